"""Every op of the table compiles to the module its docs promise, sized by shape inference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from growdsl.compile import compile_graph
from growdsl.compile.ops import BUILDERS, build_op
from growdsl.ir.ops import OPS

IMAGE = (4, 9, 9)  # odd sides, so floor rounding in strided windows is exercised
FLAT = (6,)

CASES = [
    (FLAT, "linear", {"out": 5}),
    (FLAT, "linear", {"out": 5, "bias": False}),
    (IMAGE, "conv", {"out": 8}),
    (IMAGE, "conv", {"out": 8, "k": 5, "stride": 2, "groups": 2, "bias": False}),
    (IMAGE, "conv", {"out": 8, "k": 3, "padding": 0}),
    (IMAGE, "sepconv", {"out": 7}),
    (IMAGE, "sepconv", {"out": 7, "k": 5, "stride": 2}),
    (IMAGE, "bn", {}),
    (FLAT, "bn", {}),
    *[(IMAGE, act, {}) for act in ("relu", "gelu", "tanh", "sigmoid", "silu", "rbf")],
    (IMAGE, "maxpool", {"k": 2}),
    (IMAGE, "maxpool", {"k": 3, "stride": 1}),
    (IMAGE, "avgpool", {"k": 3}),
    (IMAGE, "gap", {}),
    (IMAGE, "flatten", {}),
    (IMAGE, "dropout", {"p": 0.3}),
    (FLAT, "identity", {}),
    (IMAGE, "slice", {"start": 1, "end": 3}),
    (FLAT, "slice", {"start": 0, "end": 6}),
    (IMAGE, "pad_channels", {"out": 7}),
    (FLAT, "pad_channels", {"out": 6}),
]


def test_every_op_in_the_table_has_a_builder():
    assert set(BUILDERS) == set(OPS)


def test_every_op_in_the_table_is_covered_here():
    assert {op for _, op, _ in CASES} == set(OPS)


@pytest.mark.parametrize(("input_shape", "op", "args"), CASES, ids=lambda c: str(c))
def test_op_output_shape_equals_inferred_shape(op_graph, check_shapes, input_shape, op, args):
    graph = op_graph(input_shape, (op, args))
    check_shapes(graph, compile_graph(graph))


def test_linear_is_sized_by_its_input_and_honours_bias(op_graph):
    net = compile_graph(op_graph((6,), ("linear", {"out": 5, "bias": False})))
    layer = net.module_at("net.0")
    assert isinstance(layer, nn.Linear)
    assert (layer.in_features, layer.out_features, layer.bias) == (6, 5, None)


def test_conv_takes_k_stride_groups_and_same_padding(op_graph):
    net = compile_graph(op_graph(IMAGE, ("conv", {"out": 8, "k": 5, "stride": 2, "groups": 2})))
    conv = net.module_at("net.0")
    assert isinstance(conv, nn.Conv2d)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (4, 8, (5, 5))
    assert (conv.stride, conv.padding, conv.groups) == ((2, 2), (2, 2), 2)


def test_sepconv_is_a_bias_free_depthwise_then_a_pointwise_conv(op_graph):
    net = compile_graph(op_graph(IMAGE, ("sepconv", {"out": 7, "k": 5, "stride": 2})))
    sep = net.module_at("net.0")
    dw, pw = sep.depthwise, sep.pointwise
    assert (dw.in_channels, dw.out_channels, dw.groups, dw.kernel_size) == (4, 4, 4, (5, 5))
    assert (dw.stride, dw.padding, dw.bias) == ((2, 2), (2, 2), None)
    assert (pw.in_channels, pw.out_channels, pw.kernel_size) == (4, 7, (1, 1))
    assert list(net.state_dict()) == [
        "net.0.depthwise.weight",
        "net.0.pointwise.weight",
        "net.0.pointwise.bias",
    ]


@pytest.mark.parametrize(("input_shape", "cls"), [(FLAT, nn.BatchNorm1d), (IMAGE, nn.BatchNorm2d)])
def test_bn_picks_its_dimension_from_the_input_rank(op_graph, input_shape, cls):
    bn = compile_graph(op_graph(input_shape, ("bn", {}))).module_at("net.0")
    assert type(bn) is cls
    assert bn.num_features == input_shape[0]


def test_unresolved_defaults_fall_back_to_the_op_table():
    # Builders overlay the table's defaults: a pool's stride None means k, a conv's padding k // 2.
    assert build_op("maxpool", {"k": 3}, IMAGE).stride == 3
    conv = build_op("conv", {"out": 8, "k": 5}, IMAGE)
    assert (conv.stride, conv.padding, conv.groups, conv.bias is not None) == ((1, 1), (2, 2), 1, True)


def test_dropout_takes_its_probability(op_graph):
    drop = compile_graph(op_graph(FLAT, ("dropout", {"p": 0.3}))).module_at("net.0")
    assert isinstance(drop, nn.Dropout)
    assert drop.p == 0.3


def test_gap_pools_every_channel_to_one_by_one(op_graph):
    net = compile_graph(op_graph(IMAGE, ("gap", {})))
    x = torch.randn(2, *IMAGE)
    torch.testing.assert_close(net(x), x.mean(dim=(2, 3), keepdim=True))


@pytest.mark.parametrize("input_shape", [IMAGE, FLAT])
def test_slice_keeps_channels_start_to_end_of_dimension_one(op_graph, input_shape):
    model = compile_graph(op_graph(input_shape, ("slice", {"start": 1, "end": 4})))
    x = torch.randn(3, *input_shape)
    assert torch.equal(model(x), x[:, 1:4])
    assert not list(model.parameters())


@pytest.mark.parametrize("input_shape", [IMAGE, FLAT])
def test_pad_channels_appends_zero_channels_after_the_input(op_graph, input_shape):
    model = compile_graph(op_graph(input_shape, ("pad_channels", {"out": input_shape[0] + 3})))
    x = torch.randn(3, *input_shape)
    y = model(x)
    assert y.shape == (3, input_shape[0] + 3, *input_shape[1:])
    assert torch.equal(y[:, : input_shape[0]], x) and not y[:, input_shape[0] :].any()
    assert not list(model.parameters())
