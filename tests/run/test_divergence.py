"""A NaN/inf training loss stops the run with exit code 3 and its last good state written out
(growdsl/run/divergence.py); growth on non-finite statistics is skipped and logged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from growdsl import api, strict_json
from growdsl.errors import DivergenceError
from growdsl.run.checkpoint import load_checkpoint
from growdsl.run.rundir import read_history

ROOT = Path(__file__).resolve().parents[2]

# Epoch 1 ends with a huge but finite training loss (its held-out loss overflows to inf), epoch 2's
# is NaN: the run keeps epoch 1, and firefly's growth step after epoch 1 sees NaN scores.
EXPLODES_IN_EPOCH_2 = """
data wave(n: 200)
model m { linear(8..32) as h linear(8) linear(1) }
train { epochs 8 batch 20 loss mse optimizer sgd(lr: 0.4) seed 0 }
grow { every 1 epochs
 firefly(wider: 4, eps: 0.01) }
"""

# The example, smaller: a relu MLP, sgd(lr: 1e10), split growth.
EXPLODES_AT_ONCE = """
data spirals(n: 200)
model m { linear(8..32) as h relu linear(classes) }
train { epochs 4 batch 32 optimizer sgd(lr: 1e10) seed 0 }
grow { every 1 epochs
 split(frac: 0.5, eps: 0.01, method: fast) }
"""


def test_a_diverging_run_stops_and_keeps_its_last_good_state(tmp_path):
    (tmp_path / "s.grow").write_text(EXPLODES_IN_EPOCH_2)
    out = tmp_path / "run"
    with pytest.raises(DivergenceError) as info:
        api.run_spec(api.load(tmp_path / "s.grow"), out, quiet=True)
    assert (info.value.epoch, info.value.kept_epoch) == (2, 1)
    assert str(out) in str(info.value) and info.value.exit_code == 3

    lines = [strict_json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [r["event"] for r in lines] == ["epoch", "grow_skipped", "diverged"]
    assert lines[0]["held_out_loss"] is None and lines[0]["nonfinite"] == ["held_out_loss"]
    assert lines[1]["transform"] == "firefly" and "nan" in lines[1]["reason"]
    assert lines[2] == {"event": "diverged", "epoch": 2, "loss": None, "kept_epoch": 1, "nonfinite": ["loss"]}

    kept = load_checkpoint(out)
    assert kept["epoch"] == 1
    weights = torch.load(out / "model.pt", weights_only=True)
    assert weights.keys() == kept["model"].keys()
    assert all(torch.equal(weights[k], kept["model"][k]) and weights[k].isfinite().all() for k in weights)
    for name in ("final.grow", "report.html", "report.png"):
        assert (out / name).is_file()
    strict_json.loads((out / "graph.json").read_text())
    api.check_file(out / "final.grow")


def test_resuming_a_diverged_run_diverges_again_from_the_kept_epoch(tmp_path):
    (tmp_path / "s.grow").write_text(EXPLODES_IN_EPOCH_2)
    out = tmp_path / "run"
    with pytest.raises(DivergenceError):
        api.run_spec(api.load(tmp_path / "s.grow"), out, quiet=True)
    first = read_history(out)
    with pytest.raises(DivergenceError) as info:
        api.resume_run(out, quiet=True)
    assert (info.value.epoch, info.value.kept_epoch) == (2, 1)
    assert _untimed(read_history(out)) == _untimed(first)


def _untimed(history):
    return [{k: v for k, v in r.items() if k != "time"} for r in history]


def test_the_cli_reports_divergence_with_exit_code_3_and_no_traceback(tmp_path):
    (tmp_path / "s.grow").write_text(EXPLODES_AT_ONCE)
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "growdsl.cli", "run", str(tmp_path / "s.grow"), "--out", str(out), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert "training diverged in epoch 1" in result.stderr and "lower the learning rate" in result.stderr
    for name in ("model.pt", "final.grow", "graph.json", "report.html", "checkpoint.pt", "spec.grow"):
        assert (out / name).is_file(), name
    assert read_history(out)[-1]["event"] == "diverged"
