"""GraphML export: the graph's nodes with their attributes, as other graph tools read them."""

from __future__ import annotations

import networkx as nx

from growdsl import api
from growdsl.export import write_exports
from growdsl.lang import parse_text


def test_graphml_leaves_unset_attributes_out_instead_of_writing_null(tmp_path):
    spec = parse_text("data spirals(n: 100)\nmodel m { linear(4) as hidden relu linear(classes) }\n")
    graph = api.lower(spec)
    write_exports(tmp_path, spec, graph, api.build_model(graph), ("graphml",))
    read = nx.read_graphml(tmp_path / "graph.graphml")
    labels = {node: attrs.get("label") for node, attrs in read.nodes(data=True)}
    assert [labels[n] for n in graph.walk() if graph[n].get("label")] == ["hidden"]
    unlabelled = [n for n in graph.walk() if graph[n].get("label") is None]
    assert unlabelled and all(labels[n] is None for n in unlabelled), labels
