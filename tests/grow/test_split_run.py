"""Splitting inside real runs: budgets, ranges, optimizer carry-over and resume."""

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
    linear(6..14) as h1 tanh
    linear(6..10) as h2 tanh
    linear(classes)
}}
train {{ epochs 6 batch 64 optimizer sgd(lr: 0.1, momentum: 0.9) schedule cosine seed 1 }}
grow {{ {grow} }}
"""


def _spec(grow: str):
    return parse_text(SPEC.format(grow=grow), "split_run.grow")


def _grows(history):
    return [r for r in history if r["event"] == "grow"]


def _untimed(history):
    return [{k: v for k, v in r.items() if k != "time"} for r in history]


def test_resume_in_the_middle_of_a_splitting_run_reproduces_it(tmp_path):
    spec = _spec("every 2 epochs split(frac: 0.5, method: fast)")
    whole = run(spec, tmp_path / "whole", quiet=True)
    run(spec, tmp_path / "cut", quiet=True, epochs_limit=3)
    resumed = resume(tmp_path / "cut", quiet=True)
    assert _grows(whole.history), "the run should split something"
    assert _untimed(resumed.history) == _untimed(whole.history)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_splitting_never_passes_the_budget_or_the_ranges(tmp_path):
    cap = param_count(api.lower(_spec("split"))) + 200
    result = run(
        _spec(f"every 1 epochs until params > {cap} split(frac: 1.0, method: exact)"),
        tmp_path / "r",
        quiet=True,
    )
    sizes = [r["params"] for r in result.history if r["event"] == "epoch"]
    assert max(sizes) <= cap and param_count(result.graph) <= cap
    assert result.graph["m.h1"]["args"]["out"] <= 14 and result.graph["m.h2"]["args"]["out"] <= 10
    for g in _grows(result.history):
        assert g["params_after"] > g["params_before"] and g["score"] > 0


def test_two_adjacent_layers_growing_in_one_step_stay_within_the_budget(tmp_path):
    # h1 feeds h2: growing both adds h1's new neurons times h2's new neurons on top of their own
    # costs, which the step's budget must count too
    base = param_count(api.lower(_spec("split")))
    for extra in (120, 300, 500):
        grow = f"at epochs [1] until params > {base + extra} split(frac: 1.0, method: exact)"
        result = run(_spec(grow), tmp_path / f"r{extra}", quiet=True, epochs_limit=2)
        grown = {g["node"] for g in _grows(result.history)}
        assert param_count(result.graph) <= base + extra, (extra, grown)
