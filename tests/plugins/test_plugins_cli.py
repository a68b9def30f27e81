"""docs/plugins.md's worked example, as a user runs it: its files written out, each command a fresh
`growdsl` process, so every loading path (--plugin, run.json on resume and replay, a search's
worker processes) is exercised for real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from plugin_example import doc_files  # noqa: E402

LIST_MODULES = (
    "import atexit, sys; "
    "atexit.register(lambda: print('modules:', *sorted(sys.modules), file=sys.stderr)); "
    "from growdsl.cli import main; main()"
)
SEARCH = """\
data npz(path: "digits.npz", test: 0.2, val: 0.1)
model mlp { layernorm ortho({8, 16}) tanh linear(classes) }
train { epochs 2 batch 64 optimizer sgd(lr: 0.1) seed 0 }
search random(trials: 2, workers: 2, backend: BACKEND)
"""


def growdsl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "growdsl", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The docs' files, the data made by the docs' make_data.py, and the docs' run, interrupted
    after 2 of its 4 epochs (a fresh process, enabling the plugin as --plugin does)."""
    folder = tmp_path_factory.mktemp("plugin_example")
    for name, text in doc_files().items():
        (folder / name).write_text(text)
    subprocess.run([sys.executable, "make_data.py"], cwd=folder, check=True)
    start = (
        "from growdsl import api, plugins; from growdsl.run import run; plugins.enable(['myplugin.py']); "
        "run(api.load('plugin.grow'), 'runs/plugin', quiet=True, epochs_limit=2)"
    )
    subprocess.run([sys.executable, "-c", start], cwd=folder, check=True)
    return folder


def test_check_with_the_plugin_counts_its_ops(folder):
    done = growdsl("check", "plugin.grow", "--plugin", "myplugin.py", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("plugin.grow: ok: model mlp, input [64] -> output [10], 4 ops, 738 params")


def test_check_without_the_plugin_reports_the_data_set_and_the_hint(folder):
    done = growdsl("check", "plugin.grow", cwd=folder)
    assert done.returncode == 2
    assert "plugin.grow:2:6: unknown data set 'npz'" in done.stderr
    assert "hint: a plugin may provide it" in done.stderr and "Traceback" not in done.stderr


def test_check_of_a_spec_without_plugin_names_imports_neither_the_plugin_nor_torch(folder):
    (folder / "plain.grow").write_text("data digits\nmodel m { flatten linear(classes) }\n")
    done = subprocess.run(
        [sys.executable, "-c", LIST_MODULES, "check", "plain.grow", "--plugin", "myplugin.py"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    modules = next(line for line in done.stderr.splitlines() if line.startswith("modules: ")).split()[1:]
    assert not [
        m for m in modules if m.startswith("growdsl_plugin_") or m.split(".")[0] in ("torch", "numpy")
    ]


def test_resume_loads_the_plugins_the_run_recorded_and_the_split_grows_the_plugin_op(folder):
    run_dir = folder / "runs" / "plugin"
    assert json.loads((run_dir / "run.json").read_text())["plugins"] == [str(folder / "myplugin.py")]
    done = growdsl("resume", "runs/plugin", "--quiet", cwd=folder)  # no --plugin: run.json says
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("runs/plugin: 4 epochs")
    grows = [
        json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines() if '"grow"' in line
    ]
    assert [g["node"] for g in grows] == ["mlp.hidden"]
    assert grows[0]["params_after"] > grows[0]["params_before"] and 0 < grows[0]["delta_out"] < 0.1
    replayed = growdsl("history", "runs/plugin", "--replay", cwd=folder)
    assert replayed.returncode == 0, replayed.stderr


def test_export_and_report_load_the_recorded_plugins(folder):
    import torch

    done = growdsl("export", "runs/plugin", "--format", "pt2", cwd=folder)
    assert done.returncode == 0, done.stderr
    program = torch.export.load(folder / "runs" / "plugin" / "model.pt2").module()
    assert program(torch.randn(3, 64)).shape == (3, 10)
    refused = growdsl("export", "runs/plugin", "--format", "py", cwd=folder)
    assert refused.returncode == 2 and "cannot hold" in refused.stderr
    report = growdsl("report", "runs/plugin", cwd=folder)  # the tree picture: the plugin's shapes
    assert report.returncode == 0, report.stderr


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_search_trains_plugin_members_in_worker_processes(folder, backend):
    (folder / f"search_{backend}.grow").write_text(SEARCH.replace("BACKEND", backend))
    out = f"runs/search_{backend}"
    done = growdsl(
        "run", f"search_{backend}.grow", "--plugin", "myplugin.py", "--out", out, "--quiet", cwd=folder
    )
    assert done.returncode == 0, done.stderr[-3000:]
    log = [json.loads(line) for line in (folder / out / "search.jsonl").read_text().splitlines()]
    assert [r for r in log if r["event"] == "evaluate"], log
    assert not [r for r in log if r["event"] == "crash"], log
