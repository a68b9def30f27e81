"""`ArchGraph`: the one source of truth for a network's structure.

A `networkx.DiGraph` that is a tree (edges parent -> child, each with an integer `pos`), plus
the data binding it needs (input shape, number of classes). Schema of the node attributes:

| kind     | attributes                                                                   |
| -------- | ---------------------------------------------------------------------------- |
| `seq`    | `depth: (lo, hi)` when it is a growable `repeat lo..hi`; `template` then    |
|          | holds the repeated body as node-link data (ids relative to the seq), so a   |
|          | transform can add a copy                                                     |
| `branch` | `merge`: `add`, `concat` or `mean`                                           |
| `choice` | `chosen`: index of the chosen child, or None while unresolved                |
| `op`     | `op` (name), `args` (resolved numbers, e.g. `{"out": 8}`), `width: (lo, hi)` |
|          | when `out` is a growable range, `options: {arg: [values]}` for set-valued    |
|          | args (the first value is the one in `args` until a search picks)             |

Every node also has `kind`, `label` (its `as` name, or None) and `span` (a `Span`, or None for
nodes a transform made). Node ids are dotted paths (`mlp.hidden1`, `net.2.0.1`): a child's id is
its parent's id plus its label or its position at lowering time. Ids stay stable across growth;
new nodes get fresh ids, and order comes from `pos`, never from the id.

Data flow is implied by the tree: a `seq` chains its children, a `branch` feeds its input to every
child path and merges their outputs, a `choice` behaves as its chosen child (the first while
unresolved). Graph functions (`lower`, `infer_shapes`, `sample`, transforms) live beside this
module; `ArchGraph` itself only holds the tree and answers structural questions.
"""

from __future__ import annotations

import copy
import reprlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from growdsl.errors import Span
from growdsl.ir.ops import explicit_args

KINDS = ("seq", "branch", "choice", "op")


@dataclass
class ArchGraph:
    """A model tree bound to its data: `input_shape` excludes the batch dimension."""

    root: str
    input_shape: tuple[int, ...]
    classes: int | None = None
    g: nx.DiGraph = field(default_factory=nx.DiGraph)

    # ------------------------------------------------------------ building

    @classmethod
    def new(cls, root: str, input_shape: tuple[int, ...], classes: int | None = None) -> ArchGraph:
        graph = cls(root=root, input_shape=tuple(input_shape), classes=classes)
        graph.g.add_node(root, kind="seq", label=None, span=None)
        return graph

    def add(self, parent: str, node_id: str, kind: str, *, pos: int | None = None, **attrs: Any) -> str:
        """Add `node_id` as a child of `parent`, at the end unless `pos` is given."""
        if kind not in KINDS:
            raise ValueError(f"unknown node kind {kind!r}")
        if node_id in self.g:
            raise ValueError(f"node id {node_id!r} already exists")
        if pos is None:
            pos = max((self.g.edges[parent, c]["pos"] for c in self.g.successors(parent)), default=-1) + 1
        attrs.setdefault("label", None)
        attrs.setdefault("span", None)
        self.g.add_node(node_id, kind=kind, **attrs)
        self.g.add_edge(parent, node_id, pos=pos)
        return node_id

    def copy(self) -> ArchGraph:
        """A deep copy: transforms return a new graph and leave the old one untouched."""
        return ArchGraph(self.root, self.input_shape, self.classes, copy.deepcopy(self.g))

    # ------------------------------------------------------------ queries

    def __getitem__(self, node_id: str) -> dict[str, Any]:
        return self.g.nodes[node_id]

    def __contains__(self, node_id: str) -> bool:
        return node_id in self.g

    def kind(self, node_id: str) -> str:
        return self.g.nodes[node_id]["kind"]

    def children(self, node_id: str) -> list[str]:
        """Children in data-flow order (by edge `pos`)."""
        return sorted(self.g.successors(node_id), key=lambda c: self.g.edges[node_id, c]["pos"])

    def parent(self, node_id: str) -> str | None:
        preds = list(self.g.predecessors(node_id))
        return preds[0] if preds else None

    def live_children(self, node_id: str) -> list[str]:
        """The children data flows through: a choice's chosen one (the first if unresolved)."""
        kids = self.children(node_id)
        if self.kind(node_id) == "choice" and kids:
            return [kids[self.g.nodes[node_id].get("chosen") or 0]]
        return kids

    def walk(self, node_id: str | None = None, *, live_only: bool = True) -> Iterator[str]:
        """Pre-order walk; with `live_only`, unchosen choice paths are skipped."""
        stack = [node_id or self.root]
        while stack:
            n = stack.pop()
            yield n
            kids = self.live_children(n) if live_only else self.children(n)
            stack.extend(reversed(kids))

    def ops(self, node_id: str | None = None) -> list[str]:
        """The live op nodes under `node_id`, in execution order (branch paths one after another)."""
        return [n for n in self.walk(node_id) if self.kind(n) == "op"]

    def by_label(self, label: str) -> list[str]:
        return [n for n, a in self.g.nodes(data=True) if a.get("label") == label]

    def is_tree(self) -> bool:
        return nx.is_arborescence(self.g)

    # ------------------------------------------------------------ printing

    def describe(self, node_id: str) -> str:
        """One line for a node: `linear(out: 8) width 8..128`, `branch add`, `repeat 1..3`."""
        a = self.g.nodes[node_id]
        kind = a["kind"]
        if kind == "op":
            args = ", ".join(f"{k}: {v}" for k, v in explicit_args(a["op"], a.get("args", {})).items())
            text = f"{a['op']}({args})" if args else a["op"]
            if a.get("width"):
                text += " width {}..{}".format(*a["width"])
            for arg, values in a.get("options", {}).items():
                text += f" {arg} in {{{', '.join(map(str, values))}}}"
        elif kind == "branch":
            text = f"branch {a['merge']}"
        elif kind == "choice":
            chosen = a.get("chosen")
            text = "choice" + (f" (chosen {chosen})" if chosen is not None else "")
        else:
            text = "seq" + (" depth {}..{}".format(*a["depth"]) if a.get("depth") else "")
        if a.get("label"):
            text += f" as {a['label']}"
        return text

    def __str__(self) -> str:
        lines = [f"ArchGraph {self.root} input {list(self.input_shape)} classes {self.classes}"]

        def visit(n: str, indent: int) -> None:
            lines.append(f"{'  ' * indent}{n}: {self.describe(n)}")
            for c in self.children(n):
                visit(c, indent + 1)

        visit(self.root, 1)
        return "\n".join(lines)


# ---------------------------------------------------------------- serialisation


def _jsonable(value: Any) -> Any:
    if isinstance(value, Span):
        span = {"file": value.file, "line": value.line, "col": value.col}
        if value.end_line is not None:  # kept so a reloaded error caret spans the whole term
            span.update(end_line=value.end_line, end_col=value.end_col)
        return span
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _from_jsonable(key: str, value: Any) -> Any:
    if key == "span" and isinstance(value, dict):
        return Span(value["file"], value["line"], value["col"], value.get("end_line"), value.get("end_col"))
    if key in ("width", "depth") and isinstance(value, list):
        return tuple(value)
    return value


def to_json(graph: ArchGraph) -> dict[str, Any]:
    """Node-link JSON (plain lists, dicts, numbers, strings) for `graph.json` and checkpoints."""
    return {
        "root": graph.root,
        "input_shape": list(graph.input_shape),
        "classes": graph.classes,
        "nodes": [{"id": n, **_jsonable(dict(a))} for n, a in graph.g.nodes(data=True)],
        "edges": [{"source": u, "target": v, "pos": a["pos"]} for u, v, a in graph.g.edges(data=True)],
    }


class GraphFormatError(ValueError):
    """Data that is not the node-link JSON `to_json` writes (a damaged or hand-edited `graph.json`,
    a logged edit's donor); the message says what is wrong in words."""


def from_json(data: dict[str, Any]) -> ArchGraph:
    """The graph `to_json` wrote; a GraphFormatError for data of any other shape (checked before
    anything is built: a tree of nodes of known kinds, each but the root under one parent)."""
    check_node_link(data)
    graph = ArchGraph(data["root"], tuple(data["input_shape"]), data.get("classes"))
    for node in data["nodes"]:
        attrs = {k: _from_jsonable(k, v) for k, v in node.items() if k != "id"}
        graph.g.add_node(node["id"], **attrs)
    for edge in data["edges"]:
        graph.g.add_edge(edge["source"], edge["target"], pos=edge["pos"])
    return graph


def check_node_link(data: Any) -> None:
    """A GraphFormatError unless `data` has the shape `to_json` writes: `root` (a string),
    `input_shape` (integers), `classes` (an integer or null), `nodes` (objects with a string `id`
    and a `kind` of KINDS) and `edges` (`source` and `target` among the nodes, an integer `pos`)
    forming a tree from `root`. The nodes' other attributes are the compiler's to judge."""
    if not isinstance(data, dict):
        raise GraphFormatError(f"a graph is a JSON object, not {reprlib.repr(data)}")
    missing = [k for k in ("root", "input_shape", "nodes", "edges") if k not in data]
    if missing:
        raise GraphFormatError(f"a graph needs {', '.join(missing)}")
    shape, classes = data["input_shape"], data.get("classes")
    if not isinstance(data["root"], str):
        raise GraphFormatError(f"root must be a node id, not {reprlib.repr(data['root'])}")
    if not isinstance(shape, list) or not all(_is_int(d) for d in shape):
        raise GraphFormatError(f"input_shape must be a list of integers, not {reprlib.repr(shape)}")
    if classes is not None and not _is_int(classes):
        raise GraphFormatError(f"classes must be an integer or null, not {reprlib.repr(classes)}")
    nodes, edges = data["nodes"], data["edges"]
    if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
        raise GraphFormatError(f"nodes must be a list of objects, not {reprlib.repr(nodes)}")
    if not isinstance(edges, list) or not all(isinstance(e, dict) for e in edges):
        raise GraphFormatError(f"edges must be a list of objects, not {reprlib.repr(edges)}")
    ids = [n.get("id") for n in nodes]
    for node in nodes:
        if not isinstance(node.get("id"), str) or node.get("kind") not in KINDS:
            raise GraphFormatError(
                f"a node needs a string id and a kind of {', '.join(KINDS)}: {reprlib.repr(node)}"
            )
    tree = nx.DiGraph()
    tree.add_nodes_from(ids)
    for edge in edges:
        if edge.get("source") not in tree or edge.get("target") not in tree or not _is_int(edge.get("pos")):
            raise GraphFormatError(f"an edge joins two nodes at an integer pos: {reprlib.repr(edge)}")
        tree.add_edge(edge["source"], edge["target"])
    if len(set(ids)) != len(ids) or data["root"] not in tree or not nx.is_arborescence(tree):
        raise GraphFormatError(f"the nodes and edges are not one tree under the root {data['root']!r}")
    if tree.in_degree(data["root"]) != 0:
        raise GraphFormatError(f"the root {data['root']!r} has a parent")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def graph_difference(a: ArchGraph, b: ArchGraph, *, ignore: tuple[str, ...] = ("span",)) -> str | None:
    """The first difference between two graphs in words (the data binding, a node only one of them
    has, an attribute, a parent or a position), or None when they are the same architecture;
    attributes in `ignore` (source spans, by default: a replayed graph's spans point at the run's
    copy of the spec) are not compared."""
    for what in ("root", "input_shape", "classes"):
        if getattr(a, what) != getattr(b, what):
            return f"{what}: {getattr(a, what)!r} != {getattr(b, what)!r}"
    for node in a.walk(live_only=False):
        if node not in b:
            return f"node {node} is only in the first graph"
        attrs_a, attrs_b = (
            _without(_jsonable(dict(a[node])), ignore),
            _without(_jsonable(dict(b[node])), ignore),
        )
        for key in sorted(attrs_a.keys() | attrs_b.keys()):
            if attrs_a.get(key) != attrs_b.get(key):
                return f"node {node}: {key} {attrs_a.get(key)!r} != {attrs_b.get(key)!r}"
        if a.parent(node) != b.parent(node):
            return f"node {node}: parent {a.parent(node)} != {b.parent(node)}"
        if (
            node != a.root
            and a.g.edges[a.parent(node), node]["pos"] != b.g.edges[b.parent(node), node]["pos"]
        ):
            return f"node {node}: position under {a.parent(node)} differs"
    extra = sorted(set(b.g) - set(a.g))
    return f"node {extra[0]} is only in the second graph" if extra else None


def _without(value: Any, keys: tuple[str, ...]) -> Any:
    """JSON data with every dict entry named in `keys` removed, at any depth (a repeat's template
    holds spans too)."""
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value
