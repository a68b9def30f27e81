"""Depth surgery: a new repeat copy computes the identity at insertion, so outputs are unchanged."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from growdsl import api
from growdsl.compile import compile_graph
from growdsl.grow.deepen import NotIdentity, deepen, identity_values, measure_output, nonneg_input
from growdsl.grow.net import Net
from growdsl.grow.surgery import Overwrite, carry
from growdsl.ir.edits import AppendCopy
from growdsl.lang import parse_text

MODELS = {
    "linear_relu": "flatten linear(16) relu repeat 1..3 { linear(16) relu } linear(classes)",
    "linear_bn_relu": "flatten linear(16) relu repeat 1..3 { linear(16) bn relu } linear(classes)",
    "conv_relu": "conv(6) relu repeat 1..3 { conv(6, k: 3) relu } gap flatten linear(classes)",
    "conv_bn_relu": "conv(6) relu repeat 1..3 { conv(6, k: 3) bn relu } gap flatten linear(classes)",
    "sepconv": "conv(6) relu repeat 1..3 { sepconv(6, k: 3) relu } gap flatten linear(classes)",
    "residual_bn": (
        "conv(6) bn relu repeat 1..3 { branch add { conv(6) bn relu conv(6) bn | identity } relu } "
        "gap flatten linear(classes)"
    ),
    "residual_no_bn": (
        "conv(6) relu repeat 1..3 { branch add { conv(6) relu conv(6) | identity } relu } "
        "gap flatten linear(classes)"
    ),
}


def _net(body: str) -> Net:
    spec = parse_text(f"data digits\nmodel m {{ {body} }}\n", "t.grow")
    graph = api.lower(spec)
    torch.manual_seed(0)
    model = compile_graph(graph).double()
    x = torch.randn(64, *graph.input_shape, dtype=torch.double)
    model.train()
    with torch.no_grad():  # settle BN statistics away from their defaults
        for _ in range(3):
            model(x)
    model.eval()
    return Net(graph, model)


def _repeat(net: Net) -> str:
    return next(n for n in net.graph.walk() if net.graph[n].get("depth"))


@pytest.mark.parametrize("name", list(MODELS))
def test_a_new_copy_is_the_identity_at_insertion(name):
    net = _net(MODELS[name])
    x = torch.randn(128, *net.graph.input_shape, dtype=torch.double).abs()
    seq = _repeat(net)
    deeper = deepen(net, seq, x, torch.Generator().manual_seed(1))
    assert len(deeper.net.graph.children(seq)) == 2 and deeper.node in deeper.net.graph
    with torch.no_grad():
        before, after = net.model(x), deeper.net.model(x)
    torch.testing.assert_close(after, before, rtol=1e-9, atol=1e-9)
    assert not deeper.net.model.training


@pytest.mark.parametrize("name", list(MODELS))
def test_a_new_copy_is_the_same_as_with_every_fresh_value_drawn_and_measured(name):
    # deepen skips the forward pass without a bn and the fresh draw the identity overwrites;
    # the copy, and the generator after it, must be what drawing and measuring everything gives
    net = _net(MODELS[name])
    x = torch.randn(32, *net.graph.input_shape, dtype=torch.double).abs()
    seq = _repeat(net)
    stats = measure_output(net, seq, x, nonneg=False)

    def identity(grown, _done):
        copy = grown.graph.children(seq)[-1]
        state = grown.model.state_dict()
        sign = dataclasses.replace(stats, nonneg=nonneg_input(grown.graph, copy))
        for key, value in identity_values(grown.graph, copy, state, sign).items():
            state[key].copy_(value)

    gen_a, gen_b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a = deepen(net, seq, x, gen_a).net.model.state_dict()
    b = carry(net, AppendCopy(seq), identity, gen_b)[0].model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(gen_a.get_state(), gen_b.get_state())


def test_an_overwrite_init_that_leaves_a_tensor_unset_is_an_error():
    net = _net(MODELS["linear_relu"])
    seq = _repeat(net)

    def weight_only(grown, _done):
        copy = grown.graph.children(seq)[-1]
        grown.model.state_dict()[f"{copy}.0.weight"].fill_(0.0)

    with pytest.raises(RuntimeError, match=r"left .*\.0\.bias unset"):
        carry(net, AppendCopy(seq), Overwrite(weight_only), torch.Generator().manual_seed(1))


def test_bn_in_a_new_copy_is_set_from_its_input_statistics():
    net = _net(MODELS["linear_bn_relu"])
    x = torch.randn(256, *net.graph.input_shape, dtype=torch.double)
    deeper = deepen(net, _repeat(net), x, torch.Generator().manual_seed(1))
    bn = deeper.net.model.module_at(f"{deeper.node}.1")
    seen = []
    deeper.net.model.module_at(deeper.node).register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    deeper.net.model(x)
    torch.testing.assert_close(bn.running_mean, seen[0].mean(0))
    torch.testing.assert_close(bn.bias, seen[0].mean(0))
    torch.testing.assert_close(bn.weight, torch.sqrt(seen[0].var(0) + bn.eps))


def test_a_residual_copy_keeps_its_first_conv_random_so_it_can_learn():
    net = _net(MODELS["residual_bn"])
    x = torch.randn(32, *net.graph.input_shape, dtype=torch.double)
    deeper = deepen(net, _repeat(net), x, torch.Generator().manual_seed(1))
    state = deeper.net.model.state_dict()
    first = next(k for k in state if k.startswith(deeper.node) and k.endswith("0.0.weight"))
    assert state[first].abs().sum() > 0
    last_bn = next(k for k in state if k.startswith(deeper.node) and k.endswith(".4.weight"))
    assert torch.count_nonzero(state[last_bn]) == 0


def test_the_fresh_weights_come_from_the_generator_not_the_global_rng():
    net = _net(MODELS["residual_bn"])
    x = torch.randn(32, *net.graph.input_shape, dtype=torch.double)
    torch.manual_seed(5)
    a = deepen(net, _repeat(net), x, torch.Generator().manual_seed(1)).net.model.state_dict()
    after_a = torch.rand(1)
    torch.manual_seed(5)
    b = deepen(net, _repeat(net), x, torch.Generator().manual_seed(1)).net.model.state_dict()
    assert torch.equal(torch.rand(1), after_a)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("flatten linear(16) relu repeat 1..3 { linear(16) tanh } linear(classes)", "tanh"),
        ("flatten linear(16) relu repeat 1..3 { linear(16) relu linear(16) relu } linear(classes)", None),
        ("flatten linear(16) relu repeat 1..3 { relu linear(16) } linear(classes)", "signed"),
    ],
)
def test_bodies_that_cannot_be_the_identity_say_why(body, why):
    net = _net(body)
    x = torch.randn(16, *net.graph.input_shape, dtype=torch.double)
    if why is None:  # two identity linears in a row are fine
        deepen(net, _repeat(net), x, torch.Generator().manual_seed(1))
        return
    with pytest.raises(NotIdentity, match=why):
        deepen(net, _repeat(net), x, torch.Generator().manual_seed(1))
