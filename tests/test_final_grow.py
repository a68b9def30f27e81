"""`final.grow` re-parses and lowers to the same architecture, whatever the model's shape:
labels inside repeats and blocks, empty growable paths, grown depth."""

from __future__ import annotations

import pytest

from growdsl import api
from growdsl.export import final_grow_text
from growdsl.ir import flops, param_count
from growdsl.ir.edits import AppendCopy, Group, Several, Wrap, apply_in_place
from growdsl.lang import parse_text

CASES = {
    "labels in a repeat": "model m { flatten repeat 2 { linear(8) as h relu } linear(classes) }",
    "labels in a block used twice": "block b { linear(8) as h relu } model m { flatten b b linear(classes) }",
    "empty growable path": (
        "model m { conv(4) branch add { repeat 0..2 { conv(4) } | identity } gap flatten linear(classes) }"
    ),
    "empty nested path": "model m { flatten branch add { {} | identity } linear(classes) }",
    "grown repeat with labels": "model m { flatten repeat 1..3 { linear(8) as h relu } linear(classes) }",
}


@pytest.mark.parametrize("case", CASES)
def test_final_grow_reparses_and_lowers_to_the_same_size(case):
    spec = parse_text("data digits\n" + CASES[case], "case.grow")
    graph = api.lower(spec)
    if case.startswith("grown"):
        apply_in_place(graph, AppendCopy("m.1"))
    text = final_grow_text(spec, graph)
    again = api.lower(parse_text(text, "final.grow"))
    assert param_count(again) == param_count(graph), text


def test_an_input_split_writes_its_slices_and_lowers_to_the_same_net():
    model = "model m { conv(4) conv(8, groups: 4) as g bn relu identity as i gap flatten linear(classes) }"
    spec = parse_text("data digits\n" + model, "case.grow")
    graph = api.lower(spec)
    for edit in (Several((Group("m.g", 2), Wrap("m.g", "concat"))), Wrap("m.i", "concat")):
        apply_in_place(graph, edit)
    text = final_grow_text(spec, graph)
    for path in (
        "slice(0, 2)",
        "slice(2, 4) conv(4, groups: 2) bn",
        "slice(0, 4) identity",
        "slice(4, 8) identity",
    ):
        assert path in text, text
    again = api.lower(parse_text(text, "final.grow"))
    assert (param_count(again), flops(again)) == (param_count(graph), flops(graph)), text
