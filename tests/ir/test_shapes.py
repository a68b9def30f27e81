"""`infer_shapes`: one rule per op and merge, and errors that name the node and both shapes."""

from __future__ import annotations

import pytest

from growdsl.errors import ShapeError
from growdsl.ir import infer_shapes


@pytest.mark.parametrize(
    ("ops", "inp", "out"),
    [
        ("flatten linear(7)", (1, 8, 8), (7,)),
        ("conv(6, k: 3)", (1, 8, 8), (6, 8, 8)),
        ("conv(6, k: 3, stride: 2)", (1, 8, 8), (6, 4, 4)),
        ("conv(6, k: 3, padding: 0)", (1, 8, 8), (6, 6, 6)),
        ("conv(4, k: 1, groups: 2)", (2, 5, 5), (4, 5, 5)),
        ("sepconv(5, k: 5, stride: 2)", (3, 9, 9), (5, 5, 5)),
        ("maxpool", (2, 9, 9), (2, 4, 4)),
        ("avgpool(3, stride: 1)", (2, 9, 9), (2, 7, 7)),
        ("gap", (3, 5, 7), (3, 1, 1)),
        ("bn", (3, 5, 5), (3, 5, 5)),
        ("flatten bn", (3, 2, 2), (12,)),
        ("relu gelu tanh sigmoid silu dropout(0.1) identity", (2, 3, 3), (2, 3, 3)),
        ("flatten", (2, 3, 4), (24,)),
        ("slice(1, 3)", (4, 5, 5), (2, 5, 5)),
        ("flatten slice(0, 7)", (2, 2, 2), (7,)),
        ("pad_channels(6)", (4, 5, 5), (6, 5, 5)),
        ("flatten pad_channels(9)", (2, 2, 2), (9,)),
        ("{ }", (2, 3, 4), (2, 3, 4)),
    ],
)
def test_op_shape_rules(lower_text, ops, inp, out):
    graph = lower_text(f"model m {{ {ops} }}", input_shape=inp)
    assert infer_shapes(graph)["m"].out == out


def test_every_live_node_gets_input_and_output(lower_text):
    graph = lower_text("model m { conv(4) choice { flatten | gap flatten } }")
    shapes = infer_shapes(graph)
    assert set(shapes) == set(graph.walk())
    assert shapes["m.1"].inp == (4, 8, 8) and shapes["m.1"].out == (256,)
    assert "m.1.1" not in shapes  # the unchosen path carries no data


def test_branch_add_and_mean_keep_the_shape(lower_text):
    for merge in ("add", "mean"):
        graph = lower_text(f"model m {{ conv(4) branch {merge} {{ conv(4) relu | identity }} }}")
        assert infer_shapes(graph)["m.1"].out == (4, 8, 8)


def test_branch_concat_joins_channels(lower_text):
    graph = lower_text("model m { conv(4) branch concat { conv(3) | identity | maxpool(1) } }")
    assert infer_shapes(graph)["m.1"].out == (11, 8, 8)


def test_branch_add_width_mismatch_names_both_paths(lower_text):
    graph = lower_text("model net {\n  flatten\n  branch add { linear(8) | linear(16) }\n}")
    with pytest.raises(ShapeError) as info:
        infer_shapes(graph)
    assert info.value.message == "branch add at net.1: path net.1.0 gives [8] but path net.1.1 gives [16]"
    assert (info.value.span.line, info.value.span.col) == (3, 3)


def test_branch_concat_needs_equal_spatial_size(lower_text):
    graph = lower_text("model m { branch concat { conv(2, stride: 2) | identity } }")
    with pytest.raises(ShapeError, match=r"path m.0.0 gives \[2, 4, 4\] but path m.0.1 gives \[1, 8, 8\]"):
        infer_shapes(graph)


def test_linear_after_conv_asks_for_flatten(lower_text):
    graph = lower_text("model mlp {\n  conv(16)\n  relu\n  linear(10)\n}")
    with pytest.raises(ShapeError) as info:
        infer_shapes(graph)
    assert info.value.message == (
        "linear at mlp.2 needs a flat input but gets [16, 8, 8]: add `flatten` before it"
    )
    assert (info.value.span.line, info.value.span.col) == (4, 3)


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ("flatten conv(4)", r"conv at m.1 needs a \[C, H, W\] input but gets \[64\]"),
        ("flatten maxpool", r"maxpool at m.1 needs a \[C, H, W\] input"),
        ("flatten gap", r"gap at m.1 needs a \[C, H, W\] input"),
        ("conv(3, groups: 3)", "conv at m.0 has groups 3, which must divide its 1 input and 3 output"),
        ("maxpool(4) maxpool(4)", r"maxpool at m.1 with k 4, stride 4, padding 0 shrinks \[1, 2, 2\]"),
        ("conv(2, k: 9, padding: 0)", "conv at m.0 with k 9, stride 1, padding 0 shrinks"),
        (
            "conv(4) slice(2, 5)",
            r"slice at m.1 takes channels \[2, 5\) of a \[4, 8, 8\] input: it needs start < end <= 4",
        ),
        ("flatten slice(3, 3)", r"slice at m.1 takes channels \[3, 3\) of a \[64\] input"),
        ("conv(4) pad_channels(3)", r"pad_channels at m.1 pads \[4, 8, 8\] to 3 channels: it cannot drop"),
    ],
)
def test_shape_errors_name_the_op_and_its_input(lower_text, ops, message):
    with pytest.raises(ShapeError, match=message):
        infer_shapes(lower_text(f"model m {{ {ops} }}"))


def test_bn_rejects_two_dimensional_input(lower_text):
    with pytest.raises(ShapeError, match=r"bn at m.0 needs a \[C\] or \[C, H, W\] input but gets \[3, 4\]"):
        infer_shapes(lower_text("model m { bn }", input_shape=(3, 4)))
