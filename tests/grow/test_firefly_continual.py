"""Firefly in continual learning: old neurons stay bitwise frozen while later tasks train and
grow, new neurons never reach old ones or old heads, budgets hold, resume reproduces the run."""

from __future__ import annotations

import pytest
import torch

from growdsl import api
from growdsl.errors import SpecError
from growdsl.grow.freeze import Freeze, freeze_masks
from growdsl.ir import param_count
from growdsl.lang import parse_text
from growdsl.run import datasets, resume, run

SPEC = """\
data digits(tasks: split(5), test: 0.25)
model m {{
    flatten
    linear(8..40) as h1 relu
    linear(8..40) as h2 relu
    linear(classes)
}}
train {{ epochs 2 batch 64 optimizer adamw(lr: 0.01, weight_decay: 0.05) seed 2 device cpu }}
grow {{
    {grow}
}}
"""
FIREFLY = "firefly(wider: 6, steps: 2, samples: 96, count: 4)"


def _spec(grow: str = f"every 2 epochs\n{FIREFLY}"):
    return parse_text(SPEC.format(grow=grow), "cl.grow")


def _task_lines(history, event="task"):
    return [r for r in history if r["event"] == event]


def test_freeze_keeps_old_entries_bitwise_while_sgd_with_momentum_and_decay_trains():
    spec = _spec()
    graph = api.lower(spec)
    model = api.build_model(graph)
    old = {"m.h1": 8, "m.h2": 5, "m.5": 4}  # h2 has 3 new neurons; heads 0-3 are old tasks'
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frozen, zero = freeze_masks(graph, model.state_dict(), old)
    assert frozen["m.h1.weight"].all() and not frozen["m.h2.weight"][5:].any()
    assert frozen["m.5.weight"][:4].all() and not frozen["m.5.weight"][4:].any()
    assert zero["m.5.weight"][:4, 5:].all() and zero["m.5.weight"].sum() == 4 * 3
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    freeze = Freeze(old)
    freeze.lay(graph, model, optimizer)
    x = torch.randn(32, 1, 8, 8)
    for _ in range(5):
        loss = model(x)[:, 4:6].logsumexp(dim=1).mean()
        optimizer.zero_grad()
        loss.backward()
        assert not model.get_parameter("m.h1.weight").grad.any()
        optimizer.step()
    after = model.state_dict()
    for key, mask in frozen.items():
        expected = before[key].masked_fill(zero.get(key, torch.zeros_like(mask)), 0)
        assert torch.equal(after[key][mask], expected[mask]), key
    assert not torch.equal(after["m.h2.weight"][5:], before["m.h2.weight"][5:])


def test_growing_later_tasks_leaves_old_neurons_bitwise_and_old_logits_unchanged(tmp_path):
    spec = _spec()
    first = run(spec, tmp_path / "first", quiet=True, epochs_limit=2)  # task 0 only
    whole = run(spec, tmp_path / "whole", quiet=True)
    a, b = first.model.state_dict(), whole.model.state_dict()
    h1, h2 = (first.graph[n]["args"]["out"] for n in ("m.h1", "m.h2"))
    assert whole.graph["m.h1"]["args"]["out"] > h1 and whole.graph["m.h2"]["args"]["out"] > h2
    assert torch.equal(b["m.h1.weight"][:h1], a["m.h1.weight"])
    assert torch.equal(b["m.h2.weight"][:h2, :h1], a["m.h2.weight"])
    assert not b["m.h2.weight"][:h2, h1:].any()  # new h1 neurons do not reach old h2 neurons
    assert torch.equal(b["m.5.weight"][:2, :h2], a["m.5.weight"][:2])
    assert not b["m.5.weight"][:2, h2:].any()  # nor task 0's head
    x = datasets.load_tasks(spec.data, 2)[0].test[0][:]
    with torch.no_grad():
        assert torch.allclose(whole.model.eval()(x)[:, :2], first.model.eval()(x)[:, :2], atol=1e-5)
    last = {r["task"]: r["acc"] for r in whole.history if r["event"] == "epoch"}
    assert [last[t] for t in range(5)] == _task_lines(whole.history, "tasks_done")[0]["accs"]


def test_growth_inside_tasks_honours_the_budget_and_adds_new_neurons_only(tmp_path):
    cap = param_count(api.lower(_spec())) + 900
    result = run(_spec(f"every 1 epochs\nuntil params > {cap}\n{FIREFLY}"), tmp_path / "r", quiet=True)
    grows = _task_lines(result.history, "grow")
    assert grows and param_count(result.graph) <= cap
    assert all(g["detail"]["split"] == [] and g["detail"]["new"] > 0 for g in grows)
    steps = sorted({g["epoch"] for g in grows})
    assert 0 in steps and any(e % 2 for e in steps)  # before task 0, and inside tasks (odd epochs)
    assert result.graph["m.h1"]["args"]["out"] <= 40 and result.graph["m.h2"]["args"]["out"] <= 40


def test_resume_inside_a_growing_task_reproduces_the_uninterrupted_run(tmp_path):
    spec = _spec(f"every 1 epochs\n{FIREFLY}")
    whole = run(spec, tmp_path / "whole", quiet=True)
    run(spec, tmp_path / "cut", quiet=True, epochs_limit=5)
    resumed = resume(tmp_path / "cut", quiet=True)
    assert {5, 6} <= {g["epoch"] for g in _task_lines(whole.history, "grow")}
    untimed = [{k: v for k, v in r.items() if k != "time"} for r in whole.history]
    assert [{k: v for k, v in r.items() if k != "time"} for r in resumed.history] == untimed
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("grow", "message"),
    [
        ("split(frac: 0.25)", "split changes old neurons"),
        ("firefly(wider: 4, candidates: 4)", "firefly's 'candidates' changes old tasks"),
        ("firefly(wider: 4, deeper: 1)", "firefly's 'deeper'"),
        ("firefly(wider: 0)", "firefly grows new neurons only"),
    ],
)
def test_growth_that_would_change_old_tasks_is_a_spec_error(tmp_path, grow, message):
    with pytest.raises(SpecError, match=message):
        run(_spec(grow), tmp_path / "r", quiet=True)
