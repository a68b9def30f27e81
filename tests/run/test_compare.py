"""`growdsl compare`: a table of several runs read from their run directories, and their curves
overlaid in one picture."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from matplotlib.image import imread

from growdsl.cli import main
from growdsl.errors import DivergenceError
from growdsl.lang import parse_text
from growdsl.run import run

GROWING = """
data spirals(n: 200)
model m { linear(4..32) as hidden relu linear(classes) }
train { epochs 3 batch 32 optimizer sgd(lr: 0.1) device cpu }
grow { every 1 epochs split(frac: 0.5, method: exact) }
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished run that grew, a finished one that did not, and one killed after an epoch (its
    folder as a killed run leaves it: history and checkpoint, no final metrics)."""
    root = tmp_path_factory.mktemp("runs")
    spec = parse_text(GROWING, "m.grow")
    plain = parse_text(GROWING.replace("grow { every 1 epochs split(frac: 0.5, method: exact) }", ""), "p")
    runs = {
        "grew": run(spec, root / "grew", quiet=True),
        "plain": run(plain, root / "plain", quiet=True),
        "stopped": run(plain, root / "stopped", quiet=True, epochs_limit=1),
    }
    (runs["stopped"].dir / "metrics.json").unlink()
    return runs


def _rows(output: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in output.splitlines()[1:] if not line.startswith("*")}


def test_compare_tabulates_accuracy_size_growth_steps_and_time(runs, tmp_path):
    dirs = [str(r.dir) for r in runs.values()]
    result = CliRunner().invoke(main, ["compare", *dirs, "--plot", str(tmp_path / "cmp.png")])
    assert result.exit_code == 0, result.output
    rows = _rows(result.output.split("wrote")[0])
    grew = runs["grew"]
    history = [json.loads(line) for line in (grew.dir / "history.jsonl").read_text().splitlines()]
    steps = len({r["epoch"] for r in history if r["event"] == "grow"})
    seconds = sum(r["time"] for r in history if r["event"] == "epoch")
    assert steps >= 1 and rows["grew"] == [
        "3", f"{grew.final_metrics['test_acc']:.4g}", f"{grew.final_metrics['test_loss']:.4g}",
        f"{grew.final_metrics['params']:,}", f"{grew.final_metrics['flops']:,}", str(steps), f"{seconds:.1f}",
    ]  # fmt: skip
    assert rows["plain"][5] == "0" and rows["stopped"][0] == "1"
    last = [json.loads(line) for line in (runs["stopped"].dir / "history.jsonl").read_text().splitlines()][-1]
    assert rows["stopped"][1] == f"{last['acc']:.4g}*" and "* no test accuracy" in result.output


def test_compare_plot_is_one_picture_of_every_run(runs, tmp_path):
    CliRunner().invoke(
        main, ["compare", str(runs["grew"].dir), str(runs["plain"].dir), "--plot", str(tmp_path / "c.png")]
    )
    height, width, _ = imread(tmp_path / "c.png").shape
    assert width > 2 * height > 400


def test_compare_of_a_folder_that_is_not_a_run_exits_2(runs, tmp_path):
    result = CliRunner().invoke(main, ["compare", str(runs["grew"].dir), str(tmp_path)])
    assert result.exit_code == 2 and "is it a run directory" in result.output


def test_a_diverged_run_is_a_row_that_says_where_it_diverged(runs, tmp_path):
    spec = parse_text(GROWING.replace("sgd(lr: 0.1)", "sgd(lr: 1e30)").split("grow {")[0], "d.grow")
    with pytest.raises(DivergenceError):
        run(spec, tmp_path / "diverged", quiet=True)
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "diverged"), str(runs["plain"].dir)])
    assert result.exit_code == 0, result.output
    row = result.output.splitlines()[1]
    assert row.startswith("diverged") and row.endswith("diverged in epoch 1")
