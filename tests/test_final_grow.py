"""`final.grow` re-parses and lowers to the same architecture, whatever the model's shape:
labels inside repeats and blocks, empty growable paths, grown depth."""

from __future__ import annotations

import pytest

from growdsl import api
from growdsl.export import final_grow_text
from growdsl.ir import param_count
from growdsl.ir.edits import AppendCopy, apply_in_place
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
