"""Firefly's split candidates at full scale (docs/methods/firefly.md): learned without the ε factor,
so a split competes with new neurons on a first-order score, wins where the loss wants a split,
and is applied as two copies at `θ ± u` carrying ε/2 of the neuron's outgoing weight each."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from growdsl.compile import compile_graph
from growdsl.grow.firefly import FireflyTransform
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
        assert chosen[0].score > 4 * best_new  # it wins per added parameter, though it adds two
        applied = apply_chosen(net, [(transform, chosen)])
        (line,) = applied.records
        assert line["detail"]["chosen"] == {"new": 0, "split": 1, "deeper": 0}
        assert line["detail"]["split"] == [0]
        assert _loss(applied.net, data) < _loss(net, data) - 0.5 * chosen[0].score


def test_a_full_scale_split_places_copies_at_theta_plus_minus_u_with_eps_shares_of_the_column():
    net, data = _split_task()
    call = "firefly(wider: 0, candidates: 1, deeper: 0, steps: 3, eps: {})"
    for eps in (0.0, 0.2):
        transform = FireflyTransform.from_call(parse_value(call.format(eps)))
        (cand,) = transform.propose(net, data, F.mse_loss, torch.Generator().manual_seed(0))
        grown = apply_chosen(net, [(transform, [cand])]).net
        state = grown.model.state_dict()
        u, ub = cand.payload.u.reshape(1, 1), cand.payload.u_bias.reshape(1)
        assert float(u.abs().max()) > 0.01  # full scale: not multiplied by ε
        torch.testing.assert_close(state["m.h.weight"], torch.cat([torch.ones(1, 1), 1 + u, 1 - u]).double())
        torch.testing.assert_close(state["m.h.bias"], torch.cat([torch.zeros(1), ub, -ub]).double())
        shares = torch.tensor([[1 - eps, eps / 2, eps / 2]], dtype=torch.double)
        torch.testing.assert_close(state["m.2.weight"], OUT * shares)
        if eps == 0.0:  # the function is unchanged at ε = 0
            torch.testing.assert_close(grown.model(data[0]), net.model(data[0]), rtol=0, atol=1e-12)
        else:  # the change is first order in ε: ε times the split's difference of the outputs
            plus = torch.tanh((1 + u[0, 0]) * data[0] + ub[0])
            minus = torch.tanh((1 - u[0, 0]) * data[0] - ub[0])
            moved = OUT * eps * (0.5 * (plus + minus) - torch.tanh(data[0]))
            torch.testing.assert_close(grown.model(data[0]) - net.model(data[0]), moved.double())
