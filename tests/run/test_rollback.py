"""`train { on_divergence rollback(retries: N, factor: f) }` (growdsl/run/rollback.py): a diverged
epoch is undone and trained again with a smaller learning rate, each rollback a history line; once
the retries are spent the run stops as without it (exit 3); a run killed after a rollback resumes
to the uninterrupted result; mistakes in the setting are SpecErrors at their place."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from growdsl import api, strict_json
from growdsl.errors import DivergenceError, SpecError
from growdsl.run.checkpoint import load_checkpoint
from growdsl.run.rundir import read_history

ROOT = Path(__file__).resolve().parents[2]

# sgd(lr: 1e10) makes epoch 1's loss NaN from the start; x1e-10 gives lr 1 (it trains), x1e-5 only
# lr 1e5 (it diverges again, then again: two rollbacks, then the stop).
SPEC = """
data spirals(n: 200)
model m {{ linear(8..32) as h relu linear(classes) }}
train {{ epochs 3 batch 32 optimizer sgd(lr: 1e10) seed 0 on_divergence {policy} }}
grow {{ every 1 epochs
 split(frac: 0.5, eps: 0.01, method: fast) }}
"""
RECOVERS = SPEC.format(policy="rollback(retries: 2, factor: 1e-10)")
GIVES_UP = SPEC.format(policy="rollback(retries: 2, factor: 1e-5)")


def _lines(out: Path) -> list[dict]:
    return [strict_json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


def _untimed(history):
    return [{k: v for k, v in r.items() if k != "time"} for r in history]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "model.pt", weights_only=True)


@pytest.fixture(scope="module")
def recovered(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("recovers")
    (folder / "s.grow").write_text(RECOVERS)
    api.run_spec(api.load(folder / "s.grow"), folder / "run", quiet=True)
    return folder / "run"


def test_a_diverging_run_rolls_back_with_a_smaller_learning_rate_and_finishes(recovered):
    lines = _lines(recovered)
    assert lines[0] == {"event": "rollback", "epoch": 1, "loss": None, "kept_epoch": 0, "retry": 1,
                        "retries": 2, "lr_scale": 1e-10, "nonfinite": ["loss"]}  # fmt: skip
    epochs = [r for r in lines if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3] and all(r["loss"] < 1 for r in epochs)
    assert any(r["event"] == "grow" for r in lines)  # growth went on after the rollback
    ckpt = load_checkpoint(recovered)
    assert [g["lr"] for g in ckpt["optimizer"]["param_groups"]] == [pytest.approx(1.0)]
    assert api.replay_difference(recovered) is None


def test_when_the_retries_are_spent_the_run_stops_with_its_last_good_state(tmp_path):
    (tmp_path / "s.grow").write_text(GIVES_UP)
    out = tmp_path / "run"
    with pytest.raises(DivergenceError) as info:
        api.run_spec(api.load(tmp_path / "s.grow"), out, quiet=True)
    assert info.value.exit_code == 3 and (info.value.epoch, info.value.kept_epoch) == (2, 1)
    events = [(r["event"], r["epoch"]) for r in _lines(out)]
    assert events[0] == ("rollback", 1) and ("rollback", 2) in events and events[-1] == ("diverged", 2)
    assert [r["retry"] for r in _lines(out) if r["event"] == "rollback"] == [1, 2]
    assert (out / "model.pt").is_file() and (out / "final.grow").is_file()


# A cosine schedule anneals from the current rate towards its floor: after a rollback (x1e-10,
# lr 1) a floor left at the spec's 1e8 would pull the rate back up and diverge again; growth's
# restarted schedule is built with the scaled floor too.
COSINE = """
data spirals(n: 200)
model m { linear(8..32) as h relu linear(classes) }
train { epochs 4 batch 32 optimizer sgd(lr: 1e10) schedule cosine(min_lr: 1e8) seed 0
        on_divergence rollback(retries: 1, factor: 1e-10) }
grow { every 2 epochs
 after_growth(optimizer: fresh, schedule: restart)
 split(frac: 0.5, eps: 0.01, method: fast) }
"""


def test_a_rollback_scales_a_cosine_schedules_floor_with_the_rate(tmp_path):
    (tmp_path / "s.grow").write_text(COSINE)
    api.run_spec(api.load(tmp_path / "s.grow"), tmp_path / "run", quiet=True)
    lines = _lines(tmp_path / "run")
    assert [r["event"] for r in lines].count("rollback") == 1
    assert [r["epoch"] for r in lines if r["event"] == "epoch"] == [1, 2, 3, 4]
    assert any(r["event"] == "grow" for r in lines)  # the restarted schedule after growth
    scheduler = load_checkpoint(tmp_path / "run")["scheduler"]
    assert scheduler["eta_min"] == pytest.approx(1e-2)
    assert scheduler["base_lrs"] == [pytest.approx(1.0)]


def test_a_run_killed_right_after_a_rollback_resumes_to_the_uninterrupted_result(recovered, tmp_path):
    (tmp_path / "s.grow").write_text(RECOVERS)
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "growdsl.cli", "run", str(tmp_path / "s.grow"), "--out", str(out), "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    end = time.monotonic() + 120
    while proc.poll() is None and not (
        (out / "history.jsonl").is_file() and "rollback" in (out / "history.jsonl").read_text()
    ):
        assert time.monotonic() < end, "timed out"
        time.sleep(0.0005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert load_checkpoint(out)["epoch"] == 0, "the kill came after the next checkpoint"
    api.resume_run(out, quiet=True)
    assert _untimed(read_history(out)) == _untimed(read_history(recovered))
    mine, theirs = _weights(out), _weights(recovered)
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)


@pytest.mark.parametrize(
    ("policy", "message", "at"),
    [
        ("rollbak", "did you mean 'rollback'", "rollbak"),
        ("rollback(retries: 0)", "a whole number in [1, 100]", "0)"),
        ("rollback(factor: 1)", "a number in (0.0, 1.0)", "1)"),
        ("rollback(retrys: 2)", "did you mean 'retries'", "retrys"),
    ],
)
def test_bad_on_divergence_settings_are_spec_errors_at_their_place(tmp_path, policy, message, at):
    text = SPEC.format(policy=policy)
    (tmp_path / "s.grow").write_text(text)
    with pytest.raises(SpecError) as info:
        api.check_file(tmp_path / "s.grow")
    line = text.splitlines()[3]
    col = line.index(at, line.index("on_divergence")) + 1
    assert message in info.value.render() and (info.value.span.line, info.value.span.col) == (4, col)


def test_a_task_sequence_cannot_roll_back(tmp_path):
    spec = SPEC.format(policy="rollback").replace("spirals(n: 200)", "digits(tasks: split(5))")
    (tmp_path / "s.grow").write_text(spec.replace("linear(8..32) as h", "flatten linear(8..32) as h"))
    with pytest.raises(SpecError, match="not supported with a task sequence") as info:
        api.check_file(tmp_path / "s.grow")
    assert info.value.span.line == 4
