"""The growth policy: schedules, budgets, ranges, limits, optimizer carry-over, history, resume.

The transform here is a small real one defined for these tests ("copy": duplicate the first
neurons of every growable layer, outgoing weights shared, as a split with eps 0 does), so the
policy is exercised without depending on any one method's scores.
"""

from __future__ import annotations

import json

import pytest
import torch

from growdsl import api
from growdsl.errors import SpecError
from growdsl.grow import registry
from growdsl.grow.net import Net
from growdsl.grow.policy import DEFAULT_SCHEDULE, GrowthPolicy, Schedule
from growdsl.grow.surgery import scale_outgoing, widen_blocker
from growdsl.grow.transform import Candidate
from growdsl.ir import Widen, param_count
from growdsl.lang import parse_text
from growdsl.run import resume, run
from growdsl.run.rundir import read_history


class CopyNeurons:
    """Proposes, for every growable layer, copying each of its neurons (score 1, cost exact)."""

    name = "copy"

    def __init__(self, call) -> None:
        self.limit_count = call.keywords["count"].value if "count" in call.keywords else None

    def limit(self, net: Net) -> int | None:
        return self.limit_count

    def propose(self, net, train, loss_fn, rng):
        out = []
        for node in net.graph.ops():
            if widen_blocker(net.graph, node) is None and net.graph[node].get("width"):
                for i in range(net.graph[node]["args"]["out"]):
                    out.append(Candidate("copy", Widen(node, (i,)), 1.0, {"neuron": i}))
        return out

    def init(self, chosen):
        neurons = [c.edit.added[0] for c in chosen]

        def share_outgoing(net, done):
            for src, new in zip(neurons, done.new_neurons, strict=True):
                scale_outgoing(net, done.edit.node, src, 0.5)
                scale_outgoing(net, done.edit.node, new, 0.5)

        return share_outgoing

    def describe(self, chosen, net):
        return {"neurons": [c.edit.added[0] for c in chosen]}


@pytest.fixture(autouse=True)
def copy_transform(monkeypatch):
    monkeypatch.setitem(registry.IMPLEMENTED_TRANSFORMS, "copy", CopyNeurons)
    monkeypatch.setitem(registry.KNOWN_TRANSFORMS, "copy", "copy neurons (tests)")


SPEC = """\
data digits(test: 0.2)
model m {{
    flatten
    linear(4..12) as h1 tanh
    linear(4..9) as h2 tanh
    linear(classes)
}}
train {{ epochs 6 batch 64 optimizer sgd(lr: 0.05, momentum: 0.9) schedule cosine seed 3 }}
grow {{
    {grow}
}}
"""


def _spec(grow: str):
    return parse_text(SPEC.format(grow=grow), "test.grow")


def _grows(history):
    return [r for r in history if r["event"] == "grow"]


def test_every_n_epochs_grows_at_those_epochs_and_logs_each_changed_node(tmp_path):
    result = run(_spec("every 2 epochs\ncopy(count: 2)"), tmp_path / "r", quiet=True)
    grows = _grows(result.history)
    assert sorted({g["epoch"] for g in grows}) == [2, 4]  # never after the last epoch
    for g in grows:
        assert g["params_after"] > g["params_before"] and g["transform"] == "copy"
    lines = [json.loads(x) for x in (tmp_path / "r" / "history.jsonl").read_text().splitlines()]
    assert _grows(lines) == grows
    epochs = [r for r in lines if r["event"] == "epoch"]
    assert epochs[-1]["params"] == param_count(result.graph) > epochs[0]["params"]


def test_ranges_are_never_exceeded(tmp_path):
    result = run(_spec("every 1 epochs\ncopy"), tmp_path / "r", quiet=True)
    assert result.graph["m.h1"]["args"]["out"] == 12 and result.graph["m.h2"]["args"]["out"] == 9


def test_a_params_budget_is_never_exceeded_and_is_shared_across_steps(tmp_path):
    base = param_count(api.lower(_spec("copy")))
    cap = base + 300
    result = run(_spec(f"every 1 epochs\nuntil params > {cap}\ncopy"), tmp_path / "r", quiet=True)
    sizes = [r["params"] for r in result.history if r["event"] == "epoch"]
    assert max(sizes) <= cap and param_count(result.graph) <= cap
    assert len({g["epoch"] for g in _grows(result.history)}) >= 2  # spread over steps, not all at once


def test_a_steps_budget_limits_the_number_of_growth_steps(tmp_path):
    result = run(_spec("every 1 epochs\nuntil steps > 2\ncopy(count: 1)"), tmp_path / "r", quiet=True)
    assert sorted({g["epoch"] for g in _grows(result.history)}) == [1, 2]


def test_at_epochs_and_plateau_schedules():
    assert [e for e in range(1, 8) if Schedule(at=(2, 5)).due(e, [])] == [2, 5]
    flat = [{"event": "epoch", "epoch": i, "loss": loss} for i, loss in enumerate([1.0, 0.9, 0.9, 0.95], 1)]
    assert Schedule(patience=2).due(4, flat)
    assert not Schedule(patience=3).due(4, flat)
    after_growth = [*flat, {"event": "grow", "epoch": 4}]
    assert not Schedule(patience=2).due(4, after_growth)  # a grown net starts a fresh plateau


def _epochs(losses):
    return [{"event": "epoch", "epoch": i, "loss": loss} for i, loss in enumerate(losses, 1)]


def test_a_smoothed_plateau_ignores_epoch_to_epoch_noise_on_a_falling_loss():
    # falling 2 % an epoch, one lucky epoch 8 % low: the raw loss takes 4 epochs to beat it again
    losses = [0.98**i * (0.92 if i == 3 else 1.0) for i in range(12)]
    raw, smoothed = Schedule(patience=3), Schedule(patience=3, smooth=3)
    assert [e for e in range(1, 13) if raw.due(e, _epochs(losses[:e]))] == [7, 8]
    assert not any(smoothed.due(e, _epochs(losses[:e])) for e in range(1, 13))


def test_a_relative_threshold_calls_a_slow_crawl_converged():
    losses = [0.5 * 0.997**i for i in range(10)]  # 0.3 % an epoch, forever
    assert not any(Schedule(patience=3).due(e, _epochs(losses[:e])) for e in range(1, 11))
    assert Schedule(patience=3, rel=0.01).due(4, _epochs(losses[:4]))


def test_a_grow_block_without_schedule_grows_every_sixth_of_the_run_with_a_fresh_optimizer(tmp_path):
    policy = GrowthPolicy.from_block(_spec("copy").grow)
    assert policy.schedule == DEFAULT_SCHEDULE
    assert [DEFAULT_SCHEDULE.for_run(e).every for e in (1, 6, 7, 30, 40)] == [1, 1, 2, 5, 7]
    assert (policy.after.optimizer, policy.after.schedule, policy.after.warmup) == ("fresh", "restart", 0)
    explicit = GrowthPolicy.from_block(_spec("every 7 epochs\ncopy").grow)
    assert explicit.for_run(40).schedule == policy.for_run(40).schedule
    result = run(_spec("copy(count: 1)"), tmp_path / "r", quiet=True)  # 6 epochs: every epoch
    assert sorted({g["epoch"] for g in _grows(result.history)}) == [1, 2, 3, 4, 5]


def test_momentum_of_a_copied_neuron_goes_to_its_copy(tmp_path):
    spec = _spec("at epochs [1]\nafter_growth(optimizer: carry)\ncopy(count: 1)")
    result = run(spec, tmp_path / "r", quiet=True, epochs_limit=1)
    # after the step at epoch 1: h1 (or h2) has one more neuron; its momentum equals its source's
    ckpt = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    grown = _grows(ckpt["history"])[0]
    node, src = grown["node"], grown["detail"]["neurons"][0]
    names = [n for n, _ in result.model.named_parameters()]
    state = ckpt["optimizer"]["state"][names.index(f"{node}.weight")]["momentum_buffer"]
    new = result.graph[node]["args"]["out"] - 1
    assert torch.equal(state[new], state[src])


def test_resume_in_the_middle_of_a_growing_run_reproduces_the_uninterrupted_run(tmp_path):
    spec = _spec("every 2 epochs\ncopy(count: 3)")
    whole = run(spec, tmp_path / "whole", quiet=True)
    run(spec, tmp_path / "cut", quiet=True, epochs_limit=3)  # after the step at 2, before 4
    resumed = resume(tmp_path / "cut", quiet=True)
    untimed = [{k: v for k, v in r.items() if k != "time"} for r in whole.history]
    assert [{k: v for k, v in r.items() if k != "time"} for r in resumed.history] == untimed
    assert _grows(whole.history) and _grows(whole.history) == _grows(resumed.history)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("grow", "message"),
    [
        ("every 2 epochs\nat epochs [3]\ncopy", "one schedule"),
        ("until parms > 3k\ncopy", "did you mean 'params'"),
        ("until params < 3k\ncopy", "upper bound"),
        ("when plateu(patience: 2)\ncopy", "did you mean 'plateau'"),
        ("when plateau(patients: 2)\ncopy", "did you mean 'patience'"),
        ("every 2 epochs", "names no transform"),
        ("every 0 epochs\ncopy", "at least 1"),
        ("after_growth(warmup: -1)\ncopy", "warmup"),
        ("after_growth(warmup: 2.5)\ncopy", "warmup"),
    ],
)
def test_grow_block_mistakes_are_spec_errors(grow, message):
    with pytest.raises(SpecError, match=message):
        GrowthPolicy.from_block(_spec(grow).grow)


def _lr(ckpt) -> float:
    return ckpt["optimizer"]["param_groups"][0]["lr"]


def test_after_growth_fresh_starts_a_new_optimizer_and_restart_restarts_the_schedule(tmp_path):
    grow = "at epochs [3]\n{after}\ncopy(count: 1)"
    runs = {}
    for name, after in {
        "carry": "after_growth(optimizer: carry, schedule: continue)",
        "fresh": "",  # the default: a fresh optimizer and a restarted schedule
    }.items():
        run(_spec(grow.format(after=after)), tmp_path / name, quiet=True, epochs_limit=3)
        runs[name] = torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)
    carried, fresh = runs["carry"], runs["fresh"]
    assert _grows(carried["history"]) and _grows(fresh["history"])
    assert carried["optimizer"]["state"] and not fresh["optimizer"]["state"]  # fresh: no momentum
    assert _lr(carried) < 0.05  # the cosine schedule went on decaying
    assert _lr(fresh) == pytest.approx(0.05)  # restarted at the initial rate
    assert fresh["scheduler"]["T_max"] == 3 and fresh["scheduler"]["last_epoch"] == 0  # over the 3 left


def test_a_restarted_schedule_survives_resume(tmp_path):
    spec = _spec("every 2 epochs\nafter_growth(optimizer: fresh, schedule: restart)\ncopy(count: 2)")
    whole = run(spec, tmp_path / "whole", quiet=True)
    run(spec, tmp_path / "cut", quiet=True, epochs_limit=3)
    resumed = resume(tmp_path / "cut", quiet=True)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_finetune_keeps_epochs_of_training_between_two_steps(tmp_path):
    result = run(
        _spec("every 1 epochs\nafter_growth(finetune: 2)\ncopy(count: 1)"), tmp_path / "r", quiet=True
    )
    assert sorted({g["epoch"] for g in _grows(result.history)}) == [1, 3, 5]


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("after_growth(optimizer: reset)", "bad value reset for after_growth option .optimizer."),
        ("after_growth(schedul: restart)", "did you mean 'schedule'"),
        ("after_growth(finetune: -1)", "bad value -1 for after_growth option .finetune."),
        ("after_growth()\nafter_growth()", "one after_growth"),
    ],
)
def test_after_growth_mistakes_are_spec_errors(statement, message):
    with pytest.raises(SpecError, match=message):
        GrowthPolicy.from_block(_spec(f"every 2 epochs\n{statement}\ncopy").grow)


def test_a_growth_step_that_adds_nothing_logs_why_and_the_summary_says_so(tmp_path):
    """Path-level without noise scores every candidate 0 by design, so the policy takes none: the
    step leaves a `grow_skipped` line with the reason, and the run's summary says it never grew."""
    spec = parse_text(
        "data spirals(n: 200)\nmodel m { linear(16) as h relu linear(classes) }\n"
        "train { epochs 3 batch 32 optimizer sgd(lr: 0.1) seed 1 device cpu }\n"
        "grow { every 2 epochs pathlevel(ops: [replicate_add, split_concat], noise: 0) }\n",
        "nogrow.grow",
    )
    result = run(spec, tmp_path / "run", quiet=True)
    skipped = [r for r in read_history(result.dir) if r["event"] == "grow_skipped"]
    assert [(r["epoch"], r["transform"]) for r in skipped] == [(2, "pathlevel")]
    assert "no candidate predicted to lower the loss" in skipped[0]["reason"]
    assert "it never grew" in result.summary() and skipped[0]["reason"] in result.summary()
