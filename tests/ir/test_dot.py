"""`to_dot`: DOT text with one node per tree node and one edge per tree edge."""

from __future__ import annotations

import re

from growdsl.ir import costs, infer_shapes, to_dot

SPEC = (
    "model net { conv(4) as stem branch add { conv(4) bn | identity } choice { relu | gelu } "
    "gap flatten linear(classes) }"
)


def test_dot_declares_every_node_and_edge(lower_text):
    graph = lower_text(SPEC)
    text = to_dot(graph)
    assert text.startswith('digraph "net" {') and text.rstrip().endswith("}")
    declared = re.findall(r'^  "([^"]+)" \[shape=(\w+)', text, re.M)
    assert {n for n, _ in declared} == set(graph.g)
    edges = re.findall(r'^  "([^"]+)" -> "([^"]+)"', text, re.M)
    assert set(edges) == set(graph.g.edges)
    kinds = dict(declared)
    assert (kinds["net.stem"], kinds["net.1"], kinds["net.2"], kinds["net"]) == (
        "box",
        "diamond",
        "hexagon",
        "folder",
    )


def test_dot_shows_shapes_params_and_dashes_unchosen_paths(lower_text):
    graph = lower_text(SPEC)
    text = to_dot(graph, infer_shapes(graph), costs(graph))
    stem = next(line for line in text.splitlines() if line.startswith('  "net.stem" ['))
    assert "out [4, 8, 8]" in stem and "40 params" in stem
    assert re.search(r'^  "net.2.1" \[.*style=dashed', text, re.M)
    assert '"net.2" -> "net.2.1" [style=dashed];' in text


def test_dot_escapes_quotes_and_backslashes(lower_text):
    graph = lower_text("model m { flatten }")
    graph["m.0"]["label"] = 'say "hi" \\'
    line = next(line for line in to_dot(graph).splitlines() if line.startswith('  "m.0"'))
    assert 'as say \\"hi\\" \\\\' in line
