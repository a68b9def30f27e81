"""Path-level growth inside real runs: it composes with split in one grow block, the history
replays to graph.json, resume reproduces the run, and random choice is the baseline."""

from __future__ import annotations

import torch

from growdsl.lang import parse_text
from growdsl.run import resume, run
from growdsl.run.replay import replay_difference

SPEC = """\
data digits(test: 0.2)
block cell(c) {{ conv(c) bn relu branch add {{ conv(c, k: 1) bn | identity }} }}
model m {{ conv(4..8) as stem bn relu cell(4) as c1 maxpool cell(4) as c2 gap flatten linear(classes) }}
train {{ epochs 4 batch 128 optimizer adam(lr: 3e-3) seed 2 }}
grow {{ every 2 epochs {grow} }}
"""


def _spec(grow: str):
    return parse_text(SPEC.format(grow=grow), "pathlevel_run.grow")


def _grows(history):
    return [r for r in history if r["event"] == "grow"]


def test_pathlevel_with_split_grows_replays_and_resumes(tmp_path):
    grow = "split(on: [stem], count: 1) pathlevel(on: [c1], choose: random, steps: 2, samples: 128)"
    whole = run(_spec(grow), tmp_path / "whole", quiet=True)
    kinds = {g["transform"] for g in _grows(whole.history)}
    assert kinds == {"split", "pathlevel"}
    for g in _grows(whole.history):
        if g["transform"] == "pathlevel" and g["detail"]["op"] in ("split_concat", "insert"):
            assert g["delta_out"] < 1e-4  # exact up to float32 rounding
        if g["transform"] == "pathlevel":
            assert g["detail"]["uses"] == 2  # the shared cell changed at both uses
    assert replay_difference(tmp_path / "whole") is None
    run(_spec(grow), tmp_path / "cut", quiet=True, epochs_limit=3)
    resumed = resume(tmp_path / "cut", quiet=True)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
