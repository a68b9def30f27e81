"""`lower`: ids, labels, blocks, repeats and resolved arguments, from real `.grow` text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from growdsl.ir import infer_shapes
from growdsl.ir.edits import AppendCopy, apply_in_place
from growdsl.lang import parse_text

LANGUAGE = Path(__file__).resolve().parents[2] / "docs" / "language.md"


def _language_model_examples() -> list[str]:
    """Every fenced example of the language reference that declares a model (with its blocks)."""
    blocks = re.findall(r"```(?:grow)?\n(.*?)```", LANGUAGE.read_text(), re.S)
    return [b for b in blocks if re.search(r"^model ", b, re.M)]


def test_the_language_reference_has_model_examples():
    assert len(_language_model_examples()) >= 3


@pytest.mark.parametrize("text", _language_model_examples())
def test_every_language_example_lowers_to_a_tree(text, lower_text):
    graph = lower_text(text)
    assert graph.is_tree()
    assert graph.root == re.search(r"^model (\w+)", text, re.M).group(1)
    assert all(graph[n]["span"] is not None for n in graph.g)


def test_language_mlp_example_has_labelled_ids_and_width_ranges(lower_text):
    graph = lower_text(
        "model mlp { flatten linear(8..128) as hidden1 relu linear(8..128) as hidden2 relu linear(classes) }"
    )
    assert graph.children("mlp") == ["mlp.0", "mlp.hidden1", "mlp.2", "mlp.hidden2", "mlp.4", "mlp.5"]
    hidden = graph["mlp.hidden1"]
    assert (hidden["op"], hidden["args"], hidden["width"], hidden["label"]) == (
        "linear",
        {"out": 8, "bias": True},
        (8, 128),
        "hidden1",
    )
    assert graph["mlp.5"]["args"]["out"] == 10
    assert infer_shapes(graph)["mlp"].out == (10,)


def test_spans_point_at_each_term(lower_text):
    graph = lower_text("model m {\n  flatten\n    linear(4)\n}")
    assert (graph["m.1"]["span"].line, graph["m.1"]["span"].col) == (3, 5)


def test_conv_defaults_resolve_to_numbers(lower_text):
    graph = lower_text("model m { conv(8, k: 5, stride: 2) maxpool(3) avgpool dropout conv(4, bias: false) }")
    assert graph["m.0"]["args"] == {"out": 8, "k": 5, "stride": 2, "groups": 1, "padding": 2, "bias": True}
    assert graph["m.1"]["args"] == {"k": 3, "stride": 3, "padding": 0}
    assert graph["m.2"]["args"] == {"k": 2, "stride": 2, "padding": 0}
    assert graph["m.3"]["args"] == {"p": 0.5}
    assert graph["m.4"]["args"]["bias"] is False


def test_set_valued_args_take_their_first_value_and_keep_options(lower_text):
    graph = lower_text("model m { conv({16, 32}, k: {5, 3}) }")
    node = graph["m.0"]
    assert node["args"]["out"] == 16 and node["args"]["k"] == 5 and node["args"]["padding"] == 2
    assert node["options"] == {"out": [16, 32], "k": [5, 3]}


def test_nested_branch_and_choice_paths_are_indexed(lower_text):
    graph = lower_text(
        "model net { branch concat { conv(4) | conv(2) relu } as cat "
        "choice { conv(3, k: 3) | sepconv(3, k: 5) | identity } }"
    )
    assert graph["net.cat"]["merge"] == "concat"
    assert graph.children("net.cat") == ["net.cat.0", "net.cat.1"]
    assert graph.children("net.cat.1") == ["net.cat.1.0", "net.cat.1.1"]
    assert graph.kind("net.1") == "choice" and graph["net.1"]["chosen"] is None
    assert graph.children("net.1") == ["net.1.0", "net.1.1", "net.1.2"]


def test_block_use_expands_with_positional_keyword_and_default_args(lower_text):
    graph = lower_text(
        "block unit(c, k: 3, s: 1) { conv(c, k: k, stride: s) bn relu }\n"
        "model net { unit(8) unit(16, s: 2) as down unit(k: 5, c: 4) }"
    )
    assert graph.kind("net.0") == "seq" and graph["net.0"]["block"] == "unit"
    assert graph["net.0.0"]["args"]["out"] == 8 and graph["net.0.0"]["args"]["k"] == 3
    assert graph["net.down"]["label"] == "down"
    assert graph["net.down.0"]["args"]["stride"] == 2
    assert graph["net.2.0"]["args"]["k"] == 5 and graph["net.2.0"]["args"]["out"] == 4


def test_block_args_pass_ranges_through_nested_blocks(lower_text):
    graph = lower_text(
        "block inner(w) { linear(w) }\nblock outer(w) { inner(w) relu }\nmodel m { flatten outer(8..32) }"
    )
    assert graph["m.1.0.0"]["width"] == (8, 32)


def test_fixed_repeat_makes_copies(lower_text):
    graph = lower_text("model m { flatten repeat 3 { linear(8) relu } }")
    assert graph.children("m.1") == ["m.1.0", "m.1.1", "m.1.2"]
    assert graph.children("m.1.2") == ["m.1.2.0", "m.1.2.1"]
    assert "depth" not in graph["m.1"]


def test_ranged_repeat_starts_at_low_end_and_keeps_a_template(lower_text):
    graph = lower_text("model m { flatten repeat 2..5 { linear(8) as fc relu } }")
    assert graph["m.1"]["depth"] == (2, 5)
    assert graph.children("m.1") == ["m.1.0", "m.1.1"]
    template = graph["m.1"]["template"]
    assert [n["id"] for n in template["nodes"]] == ["*", "*.fc", "*.1"]
    assert [(e["target"], e["pos"]) for e in template["edges"]] == [("*.fc", 0), ("*.1", 1)]


def _append_copy(graph, seq):
    apply_in_place(graph, AppendCopy(seq))
    return graph.children(seq)[-1]


def test_append_copy_appends_a_fresh_copy_from_the_template(lower_text):
    graph = lower_text("model m { flatten repeat 1..3 { linear(8) as fc relu } }")
    new = _append_copy(graph, "m.1")
    assert new == "m.1.1"
    assert graph.children("m.1") == ["m.1.0", "m.1.1"]
    assert graph.children("m.1.1") == ["m.1.1.fc", "m.1.1.1"]
    assert graph["m.1.1.fc"]["args"] == graph["m.1.0.fc"]["args"]
    assert graph.is_tree()


def test_a_single_term_body_is_its_own_copy_without_a_wrapping_seq(lower_text):
    graph = lower_text("model m { flatten repeat 1..3 { linear(8) as fc } branch add { relu | identity } }")
    assert graph.children("m.1") == ["m.1.0"]
    assert graph.kind("m.1.0") == "op" and graph["m.1.0"]["label"] == "fc"
    assert graph.children("m.2") == ["m.2.0", "m.2.1"]  # single-term paths are the ops themselves
    assert _append_copy(graph, "m.1") == "m.1.1"
    assert graph.kind("m.1.1") == "op" and graph["m.1.1"]["args"] == graph["m.1.0"]["args"]
    assert infer_shapes(graph)["m.1"].out == (8,)


def test_repeat_from_zero_starts_empty(lower_text):
    graph = lower_text("model m { flatten repeat 0..2 { linear(8) } }")
    assert graph.children("m.1") == []
    assert infer_shapes(graph)["m.1"].out == (64,)


def test_model_input_option_gives_the_shape_when_the_data_has_none(lower_text):
    graph = lower_text("model m(input: [5]) { linear(3) }", input_shape=None, classes=None)
    assert graph.input_shape == (5,) and graph.classes is None


def test_model_input_option_matching_the_data_is_accepted(lower_text):
    assert lower_text("model m(input: [1, 8, 8]) { flatten }").input_shape == (1, 8, 8)


@pytest.mark.benchmark  # timed: under CI's load a wall-clock bound is noise, so not a test by default
def test_lowering_a_thousand_layers_is_fast():
    import time

    from growdsl.compile import compile_graph
    from growdsl.ir import lower

    text = "model deep { flatten " + " ".join("linear(4) relu" for _ in range(500)) + " }"
    start = time.perf_counter()
    graph = lower(parse_text(text, "deep.grow"), (1, 2, 2), 10)
    compile_graph(graph)
    assert time.perf_counter() - start < 1.0
    assert len(graph.ops()) == 1001
