"""`growdsl run --tensorboard DIR`: the history as TensorBoard events, read back with
TensorBoard's own reader."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from growdsl.cli import main
from growdsl.errors import MissingDependencyError
from growdsl.lang import parse_text
from growdsl.run import run
from growdsl.run.tensorboard import TensorBoardLog, hparams

GROWING = """
data spirals(n: 200)
model m { linear(4..32) as hidden relu linear(classes) }
train { epochs 3 batch 32 optimizer sgd(lr: 0.1) seed 3 device cpu }
grow { every 1 epochs split(frac: 0.5, method: exact) }
"""


def test_a_run_writes_every_epoch_growth_step_and_its_hparams(tmp_path):
    result = run(parse_text(GROWING, "m.grow"), tmp_path / "run", tensorboard=tmp_path / "tb")
    history = [json.loads(line) for line in (result.dir / "history.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0})
    events.Reload()
    loss = [(e.step, round(e.value, 5)) for e in events.Scalars("train/loss")]
    assert loss == [(r["epoch"], round(r["loss"], 5)) for r in history if r["event"] == "epoch"]
    assert [e.value for e in events.Scalars("size/params")][-1] == result.final_metrics["params"]
    grown = [r for r in history if r["event"] == "grow"]
    texts = events.Tensors("growth/text_summary")
    assert grown and len(texts) == len(grown)
    assert f"`{grown[0]['node']}`".encode() in texts[0].tensor_proto.string_val[0]
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")
    assert events.Scalars("final/test_acc")[0].value == pytest.approx(result.final_metrics["test_acc"])


def test_hparams_are_the_training_settings_and_transforms_as_written():
    assert hparams(parse_text(GROWING, "m.grow")) == {
        "model": "m", "data": "spirals(n: 200)", "train.epochs": 3, "train.batch": 32,
        "train.optimizer": "sgd(lr: 0.1)", "train.seed": 3, "train.device": "cpu",
        "grow": "split(frac: 0.5, method: exact)",
    }  # fmt: skip


def test_without_the_tensorboard_package_the_run_is_refused_before_it_starts(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as when tensorboard is missing
    with pytest.raises(MissingDependencyError, match=r"pip install 'growdsl\[tensorboard\]'"):
        TensorBoardLog(tmp_path / "tb")
    spec = tmp_path / "m.grow"
    spec.write_text(GROWING)
    result = CliRunner().invoke(
        main, ["run", str(spec), "--out", str(tmp_path / "run"), "--tensorboard", "tb"]
    )
    assert result.exit_code == 2 and "growdsl[tensorboard]" in result.output
    assert not (tmp_path / "run").exists()
