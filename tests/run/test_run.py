"""`run(spec)`: the run directory, the history lines, the output folder rules, the progress bar."""

from __future__ import annotations

import io
import json
import sys

import pytest
import torch
from click.testing import CliRunner

from growdsl.cli import main
from growdsl.errors import RunError
from growdsl.lang import parse_text
from growdsl.run import run
from growdsl.run.progress import progress_enabled
from growdsl.run.rundir import make_run_dir


def test_run_writes_every_file_of_the_run_directory(tiny_spec, tmp_path):
    result = run(tiny_spec, tmp_path / "out")
    names = {p.name for p in result.dir.iterdir()}
    assert {"spec.grow", "history.jsonl", "checkpoint.pt", "model.pt", "report.html", "report.png",
            "final.grow", "graph.json"} <= names  # fmt: skip
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]  # no temp files left
    assert (result.dir / "spec.grow").read_text() == (tmp_path / "tiny.grow").read_text()
    weights = torch.load(result.dir / "model.pt", weights_only=True)
    assert all(torch.equal(weights[k], v) for k, v in result.model.state_dict().items())


def test_history_has_one_line_per_epoch_in_the_documented_shape(tiny_spec, tmp_path):
    result = run(tiny_spec, tmp_path / "out")
    lines = [json.loads(x) for x in (result.dir / "history.jsonl").read_text().splitlines()]
    assert lines == result.history
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    params = sum(p.numel() for p in result.model.parameters())
    for r in lines:
        assert list(r) == ["event", "epoch", "loss", "acc", "held_out_loss", "params", "flops", "time"]
        assert r["event"] == "epoch" and r["params"] == params and r["flops"] > 0
        assert r["loss"] > 0 and 0 <= r["acc"] <= 1 and r["held_out_loss"] > 0 and r["time"] >= 0
    assert result.final_metrics["epochs"] == 3 and 0 <= result.final_metrics["test_acc"] <= 1


def test_training_learns_the_task(tmp_path):
    spec = parse_text(
        "data blobs(n: 400, classes: 3, spread: 0.5)\nmodel m { linear(16) relu linear(classes) }\n"
        "train { epochs 3 batch 32 optimizer adam(lr: 0.01) device cpu }\n",
        "b.grow",
    )
    result = run(spec, tmp_path / "out")
    assert result.final_metrics["test_acc"] > 0.9
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_regression_reports_loss_and_no_accuracy(tmp_path):
    spec = parse_text("data wave(n: 200)\nmodel w { linear(16) tanh linear(1) }\n"
                      "train { epochs 2 device cpu }\n", "w.grow")  # fmt: skip
    result = run(spec, tmp_path / "out")
    assert all(r["acc"] is None and r["loss"] > 0 for r in result.history)
    assert result.final_metrics["test_acc"] is None and "test acc" not in result.summary()


def test_regression_records_the_held_out_loss_each_epoch(tmp_path):
    """Each epoch's held-out metric is the loss on the held-out split: at the last epoch (no val
    split, so held out = test) it is the final test loss."""
    spec = parse_text("data wave(n: 200)\nmodel w { linear(16) tanh linear(1) }\n"
                      "train { epochs 2 device cpu }\n", "w.grow")  # fmt: skip
    result = run(spec, tmp_path / "out")
    assert [r["epoch"] for r in result.history if "held_out_loss" in r] == [1, 2]
    last = result.history[-1]["held_out_loss"]
    assert last == round(result.final_metrics["test_loss"], 6) and last != result.history[-1]["loss"]
    assert "held-out loss" in (result.dir / "report.html").read_text()


def test_same_seed_gives_the_same_weights(tiny_spec, tmp_path):
    a = run(tiny_spec, tmp_path / "a").model.state_dict()
    b = run(tiny_spec, tmp_path / "b").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_non_empty_out_is_refused_without_force(tiny_spec, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not empty"):
        run(tiny_spec, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_force_replaces_run_files_and_keeps_unrelated_ones(tiny_spec, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "history.jsonl").write_text('{"event": "epoch", "epoch": 99}\n')
    result = run(tiny_spec, out, force=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert len((out / "history.jsonl").read_text().splitlines()) == 3


def test_out_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(RunError, match="is a file"):
        make_run_dir(tmp_path / "f", "m", force=True)


def test_default_run_dirs_are_named_for_the_model_and_never_reused(tmp_path):
    first = make_run_dir(None, "mlp", root=tmp_path)
    second = make_run_dir(None, "mlp", root=tmp_path)
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.startswith("mlp-") and first.parent == tmp_path


def test_data_error_leaves_no_run_folder(tmp_path):
    spec = parse_text(f'data mnist(root: "{tmp_path}")\nmodel m {{ flatten linear(classes) }}\n', "m.grow")
    from growdsl.errors import DataError

    with pytest.raises(DataError):
        run(spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_progress_bar_is_off_when_quiet_or_not_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert not progress_enabled(quiet=False)
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert progress_enabled(quiet=False)
    assert not progress_enabled(quiet=True)


def test_run_prints_nothing_when_stdout_is_not_a_terminal(tiny_spec, tmp_path, capsys):
    run(tiny_spec, tmp_path / "out")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_bar_draws_on_a_terminal(tiny_spec, tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    run(tiny_spec, tmp_path / "out")
    assert "epoch 3/3" in screen.getvalue() and "params" in screen.getvalue()


def test_a_model_too_large_to_allocate_exits_2_and_leaves_no_folder(tmp_path):
    """Past `max_params` (raised here, so `check` lets it through) the allocator refuses the
    281-trillion-parameter net: a clear error, exit 2, and no half-made run folder."""
    spec = tmp_path / "huge.grow"
    spec.write_text(
        "data digits\nmodel m { flatten linear(16777216) relu linear(16777216) relu linear(classes) }\n"
        "train { max_params 1000000G }\n"
    )
    result = CliRunner().invoke(main, ["run", str(spec), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 2 and "out of memory" in result.output, result.output
    assert not (tmp_path / "out").exists()
