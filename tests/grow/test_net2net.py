"""Net2Net (docs/methods/net2net.md): net2wider's copies keep the function (up to rounding) on
linear and conv layers, their outgoing shares sum to one and differ by the noise; net2deeper's
new layer is the identity (exact in eval mode); options and misuse are SpecErrors at their place."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from small_nets import assert_grow_mistake, small_net

from growdsl.grow.net2deeper import Net2DeeperTransform
from growdsl.grow.net2wider import Net2WiderTransform
from growdsl.grow.policy import Budget, GrowthPolicy, Schedule
from growdsl.grow.step import apply_chosen
from growdsl.lang import parse_value

MLP = "linear(4..12) as h relu repeat 1..3 { linear(4) relu } linear(3)"
CNN = "conv(3..8, k: 3) as h bn relu repeat 1..3 { conv(3, k: 3) bn relu } flatten linear(3)"


def _net(body: str):
    shape = (5,) if body.startswith("linear") else (2, 6, 6)
    net, (x, y) = small_net(body, shape, 64, 3)
    net.model.train()
    with torch.no_grad():
        net.model(x)  # BN statistics away from their defaults
    net.model.eval()
    return net, (x, y)


def _step(net, data, transform):
    policy = GrowthPolicy(Schedule(every=1), Budget(), [transform])
    cands = transform.propose(net, data, F.cross_entropy, torch.Generator().manual_seed(0))
    (chosen,) = policy.select(net, {0: cands}, Budget())
    return chosen, apply_chosen(net, [(transform, chosen)], probe=data[0])


@pytest.mark.parametrize("body", [MLP, CNN], ids=["mlp", "cnn"])
def test_net2wider_copies_keep_the_function_and_share_the_columns(body):
    net, data = _net(body)
    transform = Net2WiderTransform.from_call(parse_value("net2wider(count: 2, noise: 0.1)"))
    chosen, applied = _step(net, data, transform)
    (line,) = applied.records
    assert line["delta_out"] <= 1e-12
    sources = [c.payload.neuron for c in chosen]
    assert line["detail"]["copied"] == sources and len(set(sources)) == 2
    old = net.model.state_dict()
    new = applied.net.model.state_dict()
    consumer = "m.2.0.0" if body == MLP else "m.3.0.0"
    key = f"{consumer}.weight"
    width = net.graph["m.h"]["args"]["out"]
    for k, source in enumerate(sources):  # the copies follow the old neurons, in the order chosen
        copy = width + k
        torch.testing.assert_close(new["m.h.weight"][copy], old["m.h.weight"][source])
        pair = new[key][:, source] + new[key][:, copy]
        torch.testing.assert_close(pair, old[key][:, source])
        share = float((new[key][:, copy] / old[key][:, source]).flatten()[0])
        assert share == pytest.approx(0.5 * (1 + 0.1 * chosen[k].payload.jitter))
        assert share != pytest.approx(0.5)


@pytest.mark.parametrize("body", [MLP, CNN], ids=["mlp", "cnn"])
def test_net2deeper_adds_an_identity_layer(body):
    net, data = _net(body)
    transform = Net2DeeperTransform.from_call(parse_value("net2deeper(count: 1)"))
    _, applied = _step(net, data, transform)
    (line,) = applied.records
    assert line["edit"]["kind"] == "append_copy" and line["detail"] == {"depth": 2}
    assert line["delta_out"] <= 1e-12


def test_net2deeper_offers_nothing_where_the_body_cannot_be_the_identity():
    net, data = _net("linear(4..12) as h relu repeat 1..3 { linear(4) tanh } linear(3)")  # tanh: never one
    transform = Net2DeeperTransform.from_call(parse_value("net2deeper(count: 1)"))
    assert transform.propose(net, data, F.cross_entropy, torch.Generator().manual_seed(0)) == []


@pytest.mark.parametrize(
    ("model", "grow", "message"),
    [
        ("flatten linear(8..32) relu linear(classes)", "net2wider(noise: 1)", "net2wider option 'noise'"),
        ("flatten linear(8..32) relu linear(classes)", "net2wider(frac: 0.2, count: 2)", "frac or count"),
        ("flatten linear(8..32) relu linear(classes)", "net2deeper(count: 0)", "net2deeper option 'count'"),
        ("flatten linear(8..32) relu linear(classes)", "net2deeper(frac: 0.5)", "frac"),
        ("flatten linear(8..32) relu linear(classes)", "net2deeper(count: 1)", "no target layer is in one"),
    ],
)
def test_mistakes_are_spec_errors_at_their_place(model, grow, message):
    assert_grow_mistake(model, grow, message)
