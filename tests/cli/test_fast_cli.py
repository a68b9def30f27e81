"""`check`, `fmt` and `show` start fast: they never import torch, scikit-learn or the other heavy
packages (growdsl/lazy.py says how), and `show` keeps each node on one line in a pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
HEAVY = ("torch", "sklearn", "numpy", "scipy", "matplotlib", "onnx", "PIL")

# a spec that reaches every validator `check` runs: data options, train settings, growth
# transforms (split and firefly), export formats, labels as module names
EVERYTHING = """\
data spirals(n: 300, val: 0.1)
model wide_and_deep {
    linear(8..64) as first relu
    repeat 1..3 { linear(16) relu }
    linear(classes)
}
train { epochs 4 optimizer adam(lr: 1e-3) schedule cosine }
grow { every 2 epochs until params > 4k split(frac: 0.25) firefly(wider: 4, deeper: 1) }
export [pt2, onnx]
"""


def _imported(*args: str, cwd: Path = ROOT) -> tuple[set[str], subprocess.CompletedProcess]:
    """Every top-level package the command imported, read from `python -X importtime`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "growdsl.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert lines, done.stderr
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines}, done


@pytest.mark.parametrize(
    "command", [["check"], ["fmt"], ["show"], ["show", "--dot", "DOT"]], ids=["check", "fmt", "show", "dot"]
)
def test_spec_commands_import_no_heavy_package(command, tmp_path):
    spec = tmp_path / "everything.grow"
    spec.write_text(EVERYTHING)
    args = [str(tmp_path / "tree.dot") if a == "DOT" else a for a in command]
    packages, done = _imported(args[0], str(spec), *args[1:])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "growdsl" in packages and not packages & set(HEAVY), sorted(packages & set(HEAVY))


def test_a_failing_check_imports_no_heavy_package_either(tmp_path):
    spec = tmp_path / "bad.grow"
    spec.write_text(EVERYTHING.replace("split(frac: 0.25)", "split(frac: 2)"))
    packages, done = _imported("check", str(spec))
    assert done.returncode == 2 and "frac" in done.stderr
    assert not packages & set(HEAVY)


def test_show_in_a_pipe_keeps_every_node_on_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "growdsl.cli", "show", "specs/cnn_residual.grow"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    deep = next(line for line in lines if "cnn.3.0.0.0.0 " in line)
    assert len(deep) > 80 and deep.rstrip().endswith("FLOPs")  # rich's 80 columns would wrap it
    assert all("params" in line or "FLOPs" not in line for line in lines)


def test_show_piped_into_a_reader_that_stops_early_ends_quietly():
    show = subprocess.Popen(
        [sys.executable, "-m", "growdsl.cli", "show", "specs/cnn_residual.grow"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    show.stdout.close()  # as `| head -0` would
    assert show.wait() == 1 and show.stderr.read() == b""  # no traceback, no "error: Broken pipe"
