"""`check`, `fmt` and `show` start fast: they never import torch, scikit-learn or the other heavy
packages (growdsl/lazy.py says how), and `show` keeps each node on one line in a pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
HEAVY = ("torch", "sklearn", "numpy", "scipy", "matplotlib", "onnx", "PIL")
# growdsl's own modules that only training, reports, searches and run folders need
RUN_SIDE = (
    "growdsl.run.single",
    "growdsl.run.member",
    "growdsl.run.loop",
    "growdsl.run.continual",
    "growdsl.run.report",
    "growdsl.run.plots",
    "growdsl.run.rundir",
    "growdsl.run.checkpoint",
    "growdsl.grow.freeze",
    "growdsl.search.driver",
    "growdsl.compile.compiler",
)
METHODS = ("growdsl.grow.split", "growdsl.grow.firefly", "growdsl.grow.pathlevel")
# run the CLI, then list every module loaded by then (sys.modules as the interpreter exits, so
# modules imported through importlib count too, which `python -X importtime` leaves out)
LIST_MODULES = (
    "import atexit, sys; "
    "atexit.register(lambda: print('modules:', *sorted(sys.modules), file=sys.stderr)); "
    "from growdsl.cli import main; main()"
)

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


def _modules(*args: str, cwd: Path = ROOT) -> tuple[set[str], subprocess.CompletedProcess]:
    """Every module the command `growdsl ARGS` imported."""
    done = subprocess.run(
        [sys.executable, "-c", LIST_MODULES, *args], cwd=cwd, capture_output=True, text=True
    )
    listed = [line for line in done.stderr.splitlines() if line.startswith("modules: ")]
    assert listed, done.stderr
    return set(listed[-1].split()[1:]), done


def _imported(*args: str, cwd: Path = ROOT) -> tuple[set[str], subprocess.CompletedProcess]:
    """Every top-level package the command imported."""
    modules, done = _modules(*args, cwd=cwd)
    return {name.split(".")[0] for name in modules}, done


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


@pytest.mark.parametrize("command", ["check", "fmt", "show"])
def test_spec_commands_import_nothing_that_only_training_needs(command, tmp_path):
    spec = tmp_path / "everything.grow"
    spec.write_text(EVERYTHING)
    modules, done = _modules(command, str(spec))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "growdsl.api" in modules and not modules & set(RUN_SIDE), sorted(modules & set(RUN_SIDE))


@pytest.mark.parametrize(
    "spec, named",
    [
        ("specs/quickstart.grow", {"growdsl.grow.split"}),
        ("EVERYTHING", {"growdsl.grow.split", "growdsl.grow.firefly"}),
    ],
    ids=["split", "split+firefly"],
)
def test_check_imports_only_the_growth_methods_its_spec_names(spec, named, tmp_path):
    if spec == "EVERYTHING":
        spec = tmp_path / "everything.grow"
        spec.write_text(EVERYTHING)
    modules, done = _modules("check", str(spec))
    assert done.returncode == 0, done.stderr[-2000:]
    assert modules & set(METHODS) == named


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
