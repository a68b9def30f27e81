"""Firefly's split candidates at full scale (docs/methods/firefly.md): learned without the ε factor,
so a split competes with new neurons on a first-order score, wins where the loss wants a split,
and is applied as the authors do: the neuron replaced by its two offspring `θ ± u`, half its
outgoing weight each, one neuron added; the function moves by at most `Σ |a| |uᵀh|` (tested)."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from growdsl.compile import compile_graph
from growdsl.grow.firefly import FireflyTransform
from growdsl.grow.firefly.transform import Split
from growdsl.grow.net import Net
from growdsl.grow.policy import Budget, GrowthPolicy, Schedule
from growdsl.grow.step import apply_chosen
from growdsl.ir import lower
from growdsl.lang import parse_text, parse_value

OUT = 30.0  # the neuron's outgoing weight: a split's score scales with it, a new neuron's does not
TARGET_U = (1.0, 0.5)  # the split (weight, bias) offset that makes the net fit the target exactly


def _split_task() -> tuple[Net, tuple[torch.Tensor, torch.Tensor]]:
    """One tanh neuron `OUT · tanh(x)` fitting `OUT · ½[tanh((1+u)x + b) + tanh((1−u)x − b)]`:
    the residual is exactly what splitting the neuron along `TARGET_U` removes."""
    graph = lower(parse_text("model m { linear(1..8) as h tanh linear(1) }", "t.grow"), (1,), None)
    model = compile_graph(graph).double()
    state = model.state_dict()
    with torch.no_grad():
        for key, value in (("m.h.weight", 1.0), ("m.h.bias", 0.0), ("m.2.weight", OUT), ("m.2.bias", 0.0)):
            state[key].fill_(value)
    x = torch.linspace(-3, 3, 200, dtype=torch.double)[:, None]
    w, b = TARGET_U
    y = OUT * 0.5 * (torch.tanh((1 + w) * x + b) + torch.tanh((1 - w) * x - b))
    return Net(graph, model), (x, y)


def _loss(net: Net, data) -> float:
    with torch.no_grad():
        return float(F.mse_loss(net.model(data[0]), data[1]))


def test_a_split_wins_and_is_chosen_where_the_residual_is_a_split_of_the_neuron():
    net, data = _split_task()
    transform = FireflyTransform.from_call(
        parse_value("firefly(wider: 4, candidates: 1, deeper: 0, count: 1, steps: 100, lr: 0.01, eps: 0.05)")
    )
    policy = GrowthPolicy(Schedule(every=1), Budget(), [transform])
    for seed in range(2):
        cands = transform.propose(net, data, F.mse_loss, torch.Generator().manual_seed(seed))
        (chosen,) = policy.select(net, {0: cands}, Budget())
        assert [c.detail["kind"] for c in chosen] == ["split"], seed
        best_new = max(c.score for c in cands if c.detail["kind"] == "new")
        assert chosen[0].score > 4 * best_new  # it wins per added parameter
        assert chosen[0].edit.added == (0,)  # one neuron added, costed as one
        applied = apply_chosen(net, [(transform, chosen)])
        (line,) = applied.records
        assert line["detail"]["chosen"] == {"new": 0, "split": 1, "deeper": 0}
        assert line["detail"]["split"] == [0]
        assert _loss(applied.net, data) < _loss(net, data) - 0.5 * chosen[0].score


def test_a_split_replaces_the_neuron_by_offspring_at_theta_plus_minus_u_with_half_the_column_each():
    net, data = _split_task()
    call = parse_value("firefly(wider: 0, candidates: 1, deeper: 0, steps: 3)")
    transform = FireflyTransform.from_call(call)
    (cand,) = transform.propose(net, data, F.mse_loss, torch.Generator().manual_seed(0))
    applied = apply_chosen(net, [(transform, [cand])], probe=data[0])
    state = applied.net.model.state_dict()
    u, ub = cand.payload.u.reshape(1, 1), cand.payload.u_bias.reshape(1)
    assert float(u.abs().max()) > 0.01  # full scale: not multiplied by ε
    torch.testing.assert_close(state["m.h.weight"], torch.cat([1 + u, 1 - u]).double())
    torch.testing.assert_close(state["m.h.bias"], torch.cat([ub, -ub]).double())
    torch.testing.assert_close(state["m.2.weight"], torch.full((1, 2), OUT / 2, dtype=torch.double))
    (line,) = applied.records
    assert line["params_after"] - line["params_before"] == 3  # one neuron: weight, bias, column
    # what the function moves by: OUT · [½ tanh(z + d) + ½ tanh(z − d) − tanh(z)], d = u x + b_u
    plus = torch.tanh((1 + u[0, 0]) * data[0] + ub[0])
    minus = torch.tanh((1 - u[0, 0]) * data[0] - ub[0])
    moved = OUT * (0.5 * (plus + minus) - torch.tanh(data[0]))
    torch.testing.assert_close(applied.net.model(data[0]) - net.model(data[0]), moved.double())
    d = (u[0, 0] * data[0] + ub[0]).abs()
    assert 0 < line["delta_out"] <= float((OUT * d).max())  # a 1-Lipschitz σ: at most |a| |uᵀh|


def test_a_relu_split_moves_the_output_by_at_most_half_of_a_times_u_h_and_not_at_all_at_u_zero():
    """ReLU: ½ relu(z + d) + ½ relu(z − d) − relu(z) = ½ max(0, |d| − |z|) ≤ ½ |d|."""
    graph = lower(parse_text("model m { linear(3..8) as h relu linear(2) }", "t.grow"), (4,), None)
    torch.manual_seed(0)
    net = Net(graph, compile_graph(graph).double())
    x = torch.randn(64, 4, dtype=torch.double)
    y = torch.randn(64, 2, dtype=torch.double)
    transform = FireflyTransform.from_call(parse_value("firefly(wider: 0, candidates: 3, deeper: 0)"))
    cands = transform.propose(net, (x, y), F.mse_loss, torch.Generator().manual_seed(0))
    assert len(cands) == 3
    state = net.model.state_dict()
    h = torch.cat([x, torch.ones(64, 1, dtype=torch.double)], 1)
    bound = torch.zeros(64, 2, dtype=torch.double)
    for c in cands:
        u = torch.cat([c.payload.u.reshape(-1), c.payload.u_bias.reshape(1)])
        bound += 0.5 * (h @ u).abs()[:, None] * state["m.2.weight"][:, c.payload.neuron].abs()
    applied = apply_chosen(net, [(transform, cands)], probe=x)
    change = (applied.net.model(x) - net.model(x)).abs()
    assert bool((change <= bound + 1e-12).all()) and applied.records[0]["delta_out"] > 0
    still = [
        dataclasses.replace(c, payload=Split(c.payload.neuron, 0 * c.payload.u, 0 * c.payload.u_bias))
        for c in cands
    ]
    assert apply_chosen(net, [(transform, still)], probe=x).records[0]["delta_out"] <= 1e-12  # rounding
