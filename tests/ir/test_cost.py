"""`param_count`, `flops`, `costs`: equal to what torch counts for the compiled module."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from growdsl.compile import compile_graph
from growdsl.ir import costs, flops, param_count


def _torch_counts(graph) -> tuple[int, int]:
    torch.manual_seed(0)
    net = compile_graph(graph).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.randn(1, *graph.input_shape))
    return sum(p.numel() for p in net.parameters()), counter.get_total_flops()


@pytest.mark.parametrize(
    "ops",
    [
        "flatten linear(7)",
        "flatten linear(7, bias: false)",
        "conv(6, k: 3, stride: 2)",
        "conv(6, k: 5, padding: 0, bias: false)",
        "conv(4, k: 3) conv(8, k: 1, groups: 4)",
        "conv(3) sepconv(5, k: 5, stride: 2)",
        "conv(3) bn relu maxpool avgpool(3, stride: 1) gap flatten bn gelu dropout(0.2) linear(classes)",
        "conv(4) branch add { conv(4) bn relu | identity } branch concat { sepconv(2) | conv(3, k: 1) }",
        "conv(4) branch mean { conv(4) | avgpool(1) } choice { conv(2) | conv(9, k: 5) }",
        "flatten repeat 2..4 { linear(8..32) tanh } linear(classes)",
        "conv(6) branch concat { slice(0, 2) conv(4, groups: 2) | slice(2, 6) avgpool(1) } "
        "gap flatten slice(1, 5) linear(3)",
    ],
)
def test_counts_match_torch(lower_text, ops):
    graph = lower_text(f"model m {{ {ops} }}", input_shape=(2, 9, 9))
    assert (param_count(graph), flops(graph)) == _torch_counts(graph)


def test_per_node_costs_sum_to_their_subtree(lower_text):
    graph = lower_text("model m { flatten linear(8) as a relu { linear(4) as b linear(2) as c } }")
    table = costs(graph)
    assert table["m.a"] == (64 * 8 + 8, 2 * 64 * 8)
    assert table["m.3"] == (8 * 4 + 4 + 4 * 2 + 2, 2 * (8 * 4 + 4 * 2))
    assert table["m"] == (table["m.a"][0] + table["m.3"][0], table["m.a"][1] + table["m.3"][1])
    assert param_count(graph, "m.3.c") == 10 and flops(graph, "m.2") == 0


def test_unchosen_choice_paths_cost_nothing(lower_text):
    graph = lower_text("model m { flatten choice { linear(2) | linear(200) } }")
    assert param_count(graph) == 64 * 2 + 2
    assert "m.1.1" not in costs(graph)
