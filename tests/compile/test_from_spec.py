"""Specs from the language reference, parsed and lowered, compile to nets that agree with the graph."""

from __future__ import annotations

import torch
from torch import nn

from growdsl.compile import compile_graph
from growdsl.ir.lower import lower
from growdsl.lang import parse_text

MLP = """
data digits(test: 0.2)
model mlp {
    flatten
    linear(8..128) as hidden1  relu
    linear(8..128) as hidden2  relu
    linear(classes)
}
"""

RESNET = """
block res(c) {
    branch add {
        conv(c, k: 3) bn relu conv(c, k: 3) bn
      | identity
    }
    relu
}

model net {
    conv(16..64, k: 3) bn relu as stem
    repeat 1..3 { res(16) }
    gap flatten linear(classes)
}
"""

EVERY_OP = """
model zoo {
    conv(8, k: 3, stride: 2) bn relu
    sepconv(8, k: 5) gelu
    branch concat { conv(4, k: 1) tanh | identity | bn relu }
    choice { maxpool(2) | avgpool(2) }
    silu sigmoid dropout(0.1)
    branch mean { identity | conv(20, k: 3) }
    gap flatten
    linear({16, 32}) bn
    linear(classes)
}
"""


def _compile(text: str, input_shape: tuple[int, ...], classes: int = 10):
    graph = lower(parse_text(text, "test.grow"), input_shape, classes)
    return graph, compile_graph(graph)


def test_mlp_from_the_reference_keys_weights_by_label(check_shapes):
    graph, net = _compile(MLP, (1, 8, 8))
    keys = list(net.state_dict())
    assert keys[:4] == ["mlp.hidden1.weight", "mlp.hidden1.bias", "mlp.hidden2.weight", "mlp.hidden2.bias"]
    assert net.module_at("mlp.hidden1").out_features == 8  # a range starts at its low end
    assert net(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    check_shapes(graph, net)


def test_residual_net_from_the_reference_matches_its_graph(check_shapes):
    graph, net = _compile(RESNET, (3, 32, 32))
    for key in net.state_dict():
        node = key.rpartition(".")[0]
        assert graph[node]["kind"] == "op"
    check_shapes(graph, net)


def test_a_spec_using_every_merge_and_most_ops_matches_its_graph(check_shapes):
    graph, net = _compile(EVERY_OP, (3, 16, 16))
    check_shapes(graph, net)
    compiled_ops = {type(m) for m in net.modules()}
    assert {
        nn.Conv2d,
        nn.BatchNorm1d,
        nn.BatchNorm2d,
        nn.GELU,
        nn.SiLU,
        nn.Sigmoid,
        nn.Dropout,
    } <= compiled_ops
    assert nn.MaxPool2d in compiled_ops and nn.AvgPool2d not in compiled_ops  # unresolved choice: first path


def test_a_seeded_compile_of_a_spec_is_reproducible():
    torch.manual_seed(3)
    _, first = _compile(RESNET, (3, 32, 32))
    torch.manual_seed(3)
    _, again = _compile(RESNET, (3, 32, 32))
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(first(x), again(x), rtol=0, atol=0)
