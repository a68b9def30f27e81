"""Weight surgery keeps the function: copies share their outgoing weight, fresh neurons enter
with none, and every tensor indexed by the widened channels grows along the right axis."""

from __future__ import annotations

import pytest
import torch

from growdsl.compile import compile_graph
from growdsl.grow.net import Net
from growdsl.grow.surgery import (
    carry,
    carry_optimizer_state,
    compose_carries,
    scale_outgoing,
    widen_blocker,
)
from growdsl.ir import Widen, lower
from growdsl.ir.dataflow import DataFlow
from growdsl.ir.edits import Several
from growdsl.lang import parse_text

CASES = {
    "mlp": ("model m { flatten linear(6) as h tanh linear(5) as h2 relu linear(3) }", (1, 4, 4), "m.h"),
    "mlp_bn": ("model m { flatten linear(6) as h bn relu dropout(0.2) linear(3) }", (1, 4, 4), "m.h"),
    "conv_bn_flatten": ("model m { conv(4) as c bn relu maxpool flatten linear(3) }", (2, 6, 6), "m.c"),
    "conv_into_conv": ("model m { conv(4) as c bn relu conv(5) bn gap flatten linear(3) }", (2, 6, 6), "m.c"),
    "into_sepconv": ("model m { conv(4) as c relu sepconv(5) gap flatten linear(3) }", (2, 6, 6), "m.c"),
    "sepconv_producer": (
        "model m { sepconv(4) as s bn relu conv(3) gap flatten linear(3) }",
        (2, 6, 6),
        "m.s",
    ),
    "inside_concat": (
        "model m { conv(3) relu branch concat { conv(2) as a tanh | conv(3) as b } bn relu "
        "flatten linear(3) }",
        (2, 5, 5),
        "m.2.b",
    ),
    "concat_first_path": (
        "model m { conv(3) relu branch concat { conv(2) as a tanh | conv(3) as b } bn relu gap flatten "
        "linear(3) }",
        (2, 5, 5),
        "m.2.0.a",
    ),
}


def _net(text: str, shape: tuple[int, ...]) -> Net:
    torch.manual_seed(0)
    graph = lower(parse_text(text), shape, 3)
    model = compile_graph(graph).double()
    model.train()
    # non-trivial batch-norm statistics, so copying them is tested
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, *shape, dtype=torch.float64))
    model.eval()
    return Net(graph, model)


def _outputs(net: Net, shape, mode: str) -> torch.Tensor:
    torch.manual_seed(1)
    x = torch.randn(8, *shape, dtype=torch.float64)
    net.model.train(mode == "train")
    torch.manual_seed(2)  # the same dropout mask before and after
    out = net.model(x)
    net.model.eval()
    return out


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_duplicating_a_neuron_and_halving_both_outgoing_weights_preserves_outputs(case, mode):
    text, shape, node = CASES[case]
    if mode == "train" and "dropout" in text:
        pytest.skip("a wider layer draws a different dropout mask")
    net = _net(text, shape)
    before = _outputs(net, shape, mode)
    grown, done = carry(net, Widen(node, (1, 0, 1)))
    for neuron, copy in zip([1, 0, 1], done.new_neurons, strict=False):
        share = 1 / (1 + [1, 0, 1].count(neuron))
        scale_outgoing(grown, node, copy, share)
    for neuron in (0, 1):
        scale_outgoing(grown, node, neuron, 1 / (1 + [1, 0, 1].count(neuron)))
    after = _outputs(grown, shape, mode)
    assert grown.graph[node]["args"]["out"] == net.graph[node]["args"]["out"] + 3
    torch.testing.assert_close(after, before, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CASES)
def test_fresh_neurons_enter_with_no_effect(case):
    text, shape, node = CASES[case]
    net = _net(text, shape)
    before = _outputs(net, shape, "eval")
    grown, _ = carry(net, Widen(node, (None, None)))
    torch.testing.assert_close(_outputs(grown, shape, "eval"), before, rtol=1e-10, atol=1e-10)


def test_widening_leaves_the_old_net_untouched():
    text, shape, node = CASES["mlp_bn"]
    net = _net(text, shape)
    state = {k: v.clone() for k, v in net.model.state_dict().items()}
    grown, _ = carry(net, Widen(node, (0,)))
    with torch.no_grad():
        for p in grown.model.parameters():
            p.add_(1.0)
    for k, v in net.model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_copied_neurons_carry_their_optimizer_state_and_fresh_ones_start_at_zero():
    text, shape, node = CASES["conv_bn_flatten"]
    net = _net(text, shape)
    named = {k: {"momentum_buffer": torch.randn_like(v)} for k, v in net.model.named_parameters()}
    old = {k: d["momentum_buffer"].clone() for k, d in named.items()}
    grown, done = carry(net, Widen(node, (2, None)))
    named = carry_optimizer_state(named, done)
    momentum = named["m.c.weight"]["momentum_buffer"]
    assert momentum.shape[0] == 6
    assert torch.equal(momentum[4], old["m.c.weight"][2]) and not momentum[5].any()
    consumer = named["m.5.weight"]["momentum_buffer"]  # linear after flatten: 9 columns a channel
    assert torch.equal(consumer[:, 36:45], old["m.5.weight"][:, 18:27])
    for key, param in grown.model.named_parameters():
        assert named[key]["momentum_buffer"].shape == param.shape, key


def test_layers_whose_channels_meet_an_add_or_reach_the_output_cannot_widen():
    graph = lower(
        parse_text(
            "model r { conv(4) as stem relu branch add { conv(4) as a | identity } gap flatten "
            "linear(3) as fc }"
        ),
        (2, 6, 6),
        3,
    )
    assert "branch add" in widen_blocker(graph, "r.stem")
    assert "branch add" in widen_blocker(graph, "r.2.a")
    assert "output" in widen_blocker(graph, "r.fc")
    assert "not a weight op" in widen_blocker(graph, "r.1")


def test_a_layer_whose_channels_reach_a_slice_cannot_widen():
    """The slice's bounds are fixed: a copied neuron past them would be dropped, the others shift."""
    graph = lower(
        parse_text("model m { conv(4) as a maxpool slice(0, 2) gap flatten linear(3) }"), (2, 6, 6), 3
    )
    assert widen_blocker(graph, "m.a") == "m.a's channels are sliced at m.2 (fixed bounds)"


def test_a_layer_whose_channels_are_zero_padded_cannot_widen():
    """A copied neuron would land where `pad_channels` puts a zero channel."""
    graph = lower(parse_text("model m { conv(4) as a pad_channels(6) gap flatten linear(3) }"), (2, 6, 6), 3)
    assert widen_blocker(graph, "m.a") == "m.a's channels are zero-padded at m.1 (fixed bounds)"


@pytest.mark.parametrize("case", ["mlp", "conv_into_conv", "into_sepconv"])
def test_several_widenings_in_one_compile_equal_one_carry_each(case):
    """`Several` of widenings (a layer and the layer that reads it) is carried on the tensors and
    compiled once: values, sources and shapes must be those of one carry per widening."""
    text, shape, node = CASES[case]
    net = _net(text, shape)
    second = next(c.node for c in DataFlow(net.graph).reach(node).consumers)
    edits = (Widen(node, (None, 1, 0)), Widen(second, (0, None)), Widen(node, (2,)))
    together, done = carry(net, Several(edits))
    one, steps = net, []
    for edit in edits:
        one, step = carry(one, edit)
        steps.append(step)
    composed = compose_carries(compose_carries(steps[0], steps[1]), steps[2])
    assert together.graph.g.nodes(data=True) == one.graph.g.nodes(data=True)
    for key, value in one.model.state_dict().items():
        assert torch.equal(together.model.state_dict()[key], value), key
    assert done.shapes == composed.shapes and done.sources.keys() == composed.sources.keys()
    for key, source in composed.sources.items():
        got = done.sources[key]
        assert (got.key, got.dim, got.fresh) == (source.key, source.dim, source.fresh), key
        assert (got.new_to_old is None) == (source.new_to_old is None), key
        if source.new_to_old is not None:
            assert torch.equal(got.new_to_old, source.new_to_old), key
    x = torch.randn(5, *shape, dtype=torch.float64)
    assert torch.equal(together.model(x), one.model(x))
