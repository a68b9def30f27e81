"""`resume(dir)`: an interrupted run, resumed, ends exactly where an uninterrupted one does."""

from __future__ import annotations

import json

import pytest
import torch

from growdsl.errors import CheckpointError
from growdsl.lang import parse_text
from growdsl.run import resume, run


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def without_time(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in history]


@pytest.mark.parametrize("stop_after", [0, 1, 2])
def test_resume_ends_with_bitwise_the_same_weights_as_an_uninterrupted_run(tiny_spec, tmp_path, stop_after):
    whole = run(tiny_spec, tmp_path / "whole")
    stopped = run(tiny_spec, tmp_path / "stopped", epochs_limit=stop_after)
    assert stopped.final_metrics["epochs"] == stop_after
    resumed = resume(tmp_path / "stopped")
    assert_same_weights(whole.model, resumed.model)
    assert without_time(resumed.history) == without_time(whole.history)
    assert resumed.final_metrics == whole.final_metrics


def test_resume_with_adam_and_step_schedule_on_digits(tmp_path):
    path = tmp_path / "d.grow"
    path.write_text(
        "data digits(test: 0.3)\nmodel d { flatten linear(24) relu dropout(0.3) linear(classes) }\n"
        "train { epochs 2 batch 128 optimizer adamw(lr: 0.01)\n"
        "        schedule step(every: 1, gamma: 0.5) device cpu }\n"
    )
    spec = parse_text(path.read_text(), str(path))
    whole = run(spec, tmp_path / "whole")
    run(spec, tmp_path / "stopped", epochs_limit=1)
    assert_same_weights(whole.model, resume(tmp_path / "stopped").model)


def test_resume_drops_history_lines_written_after_the_checkpoint(tiny_spec, tmp_path):
    stopped = run(tiny_spec, tmp_path / "out", epochs_limit=1)
    with open(stopped.dir / "history.jsonl", "a") as f:  # an epoch that ran but never checkpointed
        f.write(json.dumps({"event": "epoch", "epoch": 2, "loss": 9.9}) + "\n")
    resumed = resume(stopped.dir)
    lines = [json.loads(x) for x in (stopped.dir / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    assert lines == resumed.history and lines[1]["loss"] != 9.9


def test_resume_of_a_finished_run_trains_no_further(tiny_spec, tmp_path):
    done = run(tiny_spec, tmp_path / "out")
    again = resume(done.dir)
    assert_same_weights(done.model, again.model)
    assert again.history == done.history


def test_resume_keeps_overrides_applied_to_the_spec(tmp_path):
    from growdsl.lang import apply_overrides

    path = tmp_path / "s.grow"
    path.write_text(
        "data spirals(n: 200)\nmodel s { linear(8) relu linear(classes) }\ntrain { epochs 3 device cpu }\n"
    )
    spec = apply_overrides(parse_text(path.read_text(), str(path)), ["train.epochs=2"])
    run(spec, tmp_path / "out", epochs_limit=1)
    assert "epochs 2" in (tmp_path / "out" / "spec.grow").read_text()
    assert resume(tmp_path / "out").final_metrics["epochs"] == 2


def test_resume_of_a_folder_without_checkpoint_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError):
        resume(tmp_path)
