"""Firefly inside a run: the policy's budgets and ranges hold, growth is logged, resume in the
middle of a growing run reproduces the uninterrupted run."""

from __future__ import annotations

import torch

from growdsl import api
from growdsl.ir import param_count
from growdsl.lang import parse_text
from growdsl.run import resume, run

SPEC = """\
data digits(test: 0.2)
model m {{
    flatten
    linear(8..14) as h1 relu
    linear(8..40) as h2 relu
    repeat 1..2 {{ linear(8) relu }}
    linear(classes)
}}
train {{ epochs 5 batch 64 optimizer sgd(lr: 0.05, momentum: 0.9) seed 3 }}
grow {{
    {grow}
}}
"""
FIREFLY = "firefly(wider: 4, candidates: 4, deeper: 1, steps: 2, samples: 64, frac: 0.5)"


def _spec(grow: str):
    return parse_text(SPEC.format(grow=grow), "test.grow")


def _grows(history):
    return [r for r in history if r["event"] == "grow"]


def test_a_growing_run_keeps_ranges_and_the_params_budget(tmp_path):
    cap = param_count(api.lower(_spec(FIREFLY))) + 400
    result = run(_spec(f"every 1 epochs\nuntil params > {cap}\n{FIREFLY}"), tmp_path / "r", quiet=True)
    grows = _grows(result.history)
    assert grows and all(
        g["transform"] == "firefly" and g["params_after"] > g["params_before"] for g in grows
    )
    assert param_count(result.graph) <= cap
    assert result.graph["m.h1"]["args"]["out"] <= 14 and len(result.graph.children("m.5")) <= 2


def test_on_labels_limit_growth_to_the_named_layers(tmp_path):
    result = run(
        _spec(f"every 1 epochs\n{FIREFLY[:-1]}, on: [h2])"), tmp_path / "r", quiet=True, epochs_limit=2
    )
    assert {g["node"] for g in _grows(result.history)} == {"m.h2"}
    assert result.graph["m.h1"]["args"]["out"] == 8 and len(result.graph.children("m.5")) == 1


def test_resume_in_the_middle_of_a_growing_run_reproduces_the_uninterrupted_run(tmp_path):
    spec = _spec(f"every 2 epochs\n{FIREFLY}")
    whole = run(spec, tmp_path / "whole", quiet=True)
    run(spec, tmp_path / "cut", quiet=True, epochs_limit=3)  # after the step at 2, before 4
    resumed = resume(tmp_path / "cut", quiet=True)
    untimed = [{k: v for k, v in r.items() if k != "time"} for r in whole.history]
    assert [{k: v for k, v in r.items() if k != "time"} for r in resumed.history] == untimed
    assert len({g["epoch"] for g in _grows(whole.history)}) == 2
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
