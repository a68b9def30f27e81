"""Structural changes as values: the closed vocabulary of edits growth and search make to a graph.

Every change growdsl makes to an architecture after lowering is one of these frozen dataclasses,
applied by `apply_edit`, a pure function `ArchGraph -> (ArchGraph, renames)`; `renames` maps the
ids of nodes that moved (old -> new). Weights follow by name in `growdsl.grow.surgery.carry`. An
edit has a JSON form (`edit_to_json` / `edit_from_json`), so the history can log it and `fold`
can replay a run's growth over its spec's lowered graph (docs/architecture.md, "Edits").

Semantics, exactly:

- `Widen(node, added)`: weight op `node` gains `len(added)` output neurons; `added[k]` is the
  neuron the k-th new one copies, or None for a fresh one (the source matters to the weight
  carry, not to the graph). Renames nothing.
- `AppendCopy(seq)`: growable repeat `seq` gains one copy of its body, from its `template`, with
  the id one past the largest index in use. Renames nothing.
- `Wrap(node, merge, paths)`: `node` becomes `branch MERGE { node | copy ... }` with `paths`
  paths: the branch takes `node`'s id, label and place; the old subtree moves to `<node>.0`
  (renamed: `n -> <node>.0<rest>` for `node` and everything under it), copies without labels to
  `<node>.1`, ... The paths lose `node`'s width range (a path's output meets the others' in
  the merge, so no path can widen alone). With `concat`, the layer's channels are shared out
  among the paths in contiguous groups (`concat_sizes`; `concat_split` says how): a weight op's
  output neurons (each path reads the whole input), or, for an `identity`, a pool or a grouped
  conv, the input channels: path k is then `seq { slice(start_k, end_k) <copy> }` (ids
  `<node>.k.0` and `<node>.k.1`; renamed: `n -> <node>.0.1<rest>`), a grouped conv's `groups`
  and `out` divided by `paths`.
- `Insert(parent, pos, op, args)`: a new op at child position `pos` of seq or branch `parent` (a
  branch gains a path), id `<parent>.<n>` with `n` one past the largest numeric segment in use.
  Renames nothing.
- `Group(node, count)`: `node` and the `count - 1` siblings after it move into a new `seq` that
  takes `node`'s id and place (no label); the i-th moved node becomes `<node>.<i>`, its subtree
  with it (renamed: `node…` -> `<node>.0…`, a sibling `s…` -> `<node>.<i>…`). In a branch only a
  single path can be grouped (`count` 1). A seq of one child computes what the child computes, so
  grouping changes nothing but the tree (a conv and its BN become one layer a `Wrap` can take).
- `Several(edits)`: the edits in order, each naming nodes as they are after the ones before (one
  path-level change made to every use of a shared cell). Renames: all of theirs, composed.
- `Graft(node, donor)`: `node`'s subtree is replaced by `donor` (node-link JSON text of a
  subtree, ids relative to `*`); `node` keeps its id and place. Renames nothing; the removed
  nodes vanish.

`room(graph, edit)` says whether the spec's ranges allow an edit (a width or depth range's high
end); `apply_edit` raises `EditError` for an edit that does not fit the graph at all.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import reprlib
from dataclasses import dataclass
from typing import Any

import networkx as nx

from growdsl import strict_json
from growdsl.ir.graph import ArchGraph, GraphFormatError, check_node_link, from_json, to_json
from growdsl.ir.ops import OPS, WEIGHT_OPS
from growdsl.ir.shapes import infer_shapes

Renames = dict[str, str]
SUBTREE_ROOT = "*"  # the root of a donor's relative ids, as in a repeat's template
MERGES = ("add", "mean", "concat")
INPUT_SPLIT = ("identity", "maxpool", "avgpool")  # per-channel ops a concat splits by input channels


class EditError(ValueError):
    """An edit that does not fit the graph it is applied to (a missing node, a wrong kind)."""


class _Targeted:
    """What every edit has: the node it acts on (`target`: the field its `_TARGET` names)."""

    _TARGET = "node"

    @property
    def target(self) -> str:
        return getattr(self, self._TARGET)


@dataclass(frozen=True)
class Widen(_Targeted):
    node: str
    added: tuple[int | None, ...]


@dataclass(frozen=True)
class AppendCopy(_Targeted):
    _TARGET = "seq"
    seq: str


@dataclass(frozen=True)
class Wrap(_Targeted):
    node: str
    merge: str
    paths: int = 2


@dataclass(frozen=True)
class Insert(_Targeted):
    _TARGET = "parent"
    parent: str
    pos: int
    op: str
    args: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Graft(_Targeted):
    node: str
    donor: str  # node-link JSON text of the donor subtree, ids relative to SUBTREE_ROOT


@dataclass(frozen=True)
class Group(_Targeted):
    node: str
    count: int = 1


@dataclass(frozen=True)
class Several:
    edits: tuple  # of Edit, each applied after the ones before

    @property
    def target(self) -> str:
        return self.edits[0].target


Edit = Widen | AppendCopy | Wrap | Insert | Graft | Group | Several
EDIT_KINDS: dict[str, type] = {
    "widen": Widen,
    "append_copy": AppendCopy,
    "wrap": Wrap,
    "insert": Insert,
    "graft": Graft,
    "group": Group,
    "several": Several,
}
_KIND_OF = {cls: kind for kind, cls in EDIT_KINDS.items()}


# ---------------------------------------------------------------- applying


def apply_edit(graph: ArchGraph, edit: Edit) -> tuple[ArchGraph, Renames]:
    """The graph after `edit`, and the ids of the nodes that moved (old -> new). `graph` is left
    untouched."""
    out = _copy_for_edit(graph)
    renames = apply_in_place(out, edit)
    return out, renames


def _copy_for_edit(graph: ArchGraph) -> ArchGraph:
    """A copy of `graph` that any edit may change: new node and edge attribute dicts, whose values
    (`args` dicts, templates, spans) are shared with `graph`. No edit writes into such a value (an
    edit replaces a node's `args`, never changes it in place; tests/ir/test_edits.py checks that
    each kind leaves its input as it was), and a deep copy of the whole tree was most of a small
    net's edit: a growth step makes several (docs/benchmarks.md, "Cost of a step against an
    epoch")."""
    g = nx.DiGraph()
    g.add_nodes_from((n, dict(a)) for n, a in graph.g.nodes(data=True))
    g.add_edges_from((u, v, dict(a)) for u, v, a in graph.g.edges(data=True))
    return ArchGraph(graph.root, graph.input_shape, graph.classes, g)


def apply_in_place(graph: ArchGraph, edit: Edit) -> Renames:
    """`apply_edit` on `graph` itself, for a caller that owns a copy (the planner, `fold`)."""
    if isinstance(edit, Several):
        if not edit.edits:
            raise EditError("several: no edits")
        renames: Renames = {}
        for part in edit.edits:
            renames = compose_renames(renames, apply_in_place(graph, part))
        return renames
    if edit.target not in graph:
        raise EditError(f"{_KIND_OF[type(edit)]}: no node {edit.target!r} in the graph")
    if isinstance(edit, Widen):
        return _widen(graph, edit)
    if isinstance(edit, AppendCopy):
        return _append_copy(graph, edit)
    if isinstance(edit, Wrap):
        return _wrap(graph, edit)
    if isinstance(edit, Insert):
        return _insert(graph, edit)
    if isinstance(edit, Group):
        return _group(graph, edit)
    return _graft(graph, edit)


def fold(graph: ArchGraph, edits: list[Edit]) -> ArchGraph:
    """The graph after every edit in order (a run's growth, replayed)."""
    out = graph.copy()
    for edit in edits:
        apply_in_place(out, edit)
    return out


def room(graph: ArchGraph, edit: Edit) -> bool:
    """Whether the spec's ranges allow `edit`: a widening stays within the node's width range, a
    new repeat copy within the repeat's depth range. Edits that no range governs (wrap, insert,
    graft, group) always have room; `several` has room when each of its edits has, in turn."""
    if isinstance(edit, Several):
        planned = graph.copy()
        for part in edit.edits:
            if not room(planned, part):
                return False
            apply_in_place(planned, part)
        return True
    attrs = graph[edit.target]
    if isinstance(edit, Widen):
        return bool(attrs.get("width")) and attrs["args"]["out"] + len(edit.added) <= attrs["width"][1]
    if isinstance(edit, AppendCopy):
        return bool(attrs.get("depth")) and len(graph.children(edit.seq)) < attrs["depth"][1]
    return True


def rename_edit(edit: Edit, renames: Renames) -> Edit:
    """`edit` with its node ids moved by `renames` (an earlier edit of the same step wrapped its
    target). An id the renames do not list moves with its nearest listed ancestor (a node a
    `several`'s earlier edit made inside a subtree that moved)."""
    if isinstance(edit, Several):
        return Several(tuple(rename_edit(part, renames) for part in edit.edits))
    moved = renamed_id(edit.target, renames)
    return dataclasses.replace(edit, **{edit._TARGET: moved}) if moved != edit.target else edit


def renamed_id(node: str, renames: Renames) -> str:
    """`node`'s id after `renames`: its own entry, else its nearest listed ancestor's plus the rest."""
    if node in renames:
        return renames[node]
    head = node
    while "." in head:
        head = head.rsplit(".", 1)[0]
        if head in renames:
            return renames[head] + node[len(head) :]
    return node


def compose_renames(first: Renames, then: Renames) -> Renames:
    """The renames of two edits in a row, from the ids before the first to those after the second."""
    return {**{k: then.get(v, v) for k, v in first.items()}, **then}


def _widen(graph: ArchGraph, edit: Widen) -> Renames:
    attrs = graph[edit.node]
    if attrs["kind"] != "op" or attrs["op"] not in WEIGHT_OPS:
        raise EditError(f"widen: {edit.node} is not a weight op ({', '.join(WEIGHT_OPS)})")
    if not edit.added:
        raise EditError(f"widen: {edit.node} gains no neurons")
    width = attrs["args"]["out"]
    bad = [s for s in edit.added if s is not None and not 0 <= s < width]
    if bad:
        raise EditError(f"widen: {edit.node} has {width} neurons, so it cannot copy neuron {bad[0]}")
    attrs["args"] = {**attrs["args"], "out": width + len(edit.added)}
    return {}


def _append_copy(graph: ArchGraph, edit: AppendCopy) -> Renames:
    if not graph[edit.seq].get("template"):
        raise EditError(f"append_copy: {edit.seq} is not a growable repeat")
    body = from_json({"root": SUBTREE_ROOT, "input_shape": [], **graph[edit.seq]["template"]})
    kids = graph.children(edit.seq)
    index = max((int(c.rsplit(".", 1)[1]) for c in kids), default=-1) + 1
    _add_subtree(graph, edit.seq, f"{edit.seq}.{index}", body, SUBTREE_ROOT, pos=_next_pos(graph, edit.seq))
    return {}


def _wrap(graph: ArchGraph, edit: Wrap) -> Renames:
    node = edit.node
    if node == graph.root:
        raise EditError("wrap: the model's root cannot be wrapped")
    if edit.merge not in MERGES:
        raise EditError(f"wrap: merge must be one of {', '.join(MERGES)}, not {edit.merge!r}")
    if edit.paths < 2:
        raise EditError("wrap: a branch needs at least 2 paths")
    attrs = graph[node]
    split = concat_split(graph, node, edit.paths) if edit.merge == "concat" else None
    inner = ".1" if split and split.inputs else ""  # where a path's copy sits under its slice
    subtree = _subtree(graph, node)
    parent = graph.parent(node)
    pos = graph.g.edges[parent, node]["pos"]
    label, span = attrs.get("label"), attrs.get("span")
    old_ids = list(graph.walk(node, live_only=False))
    graph.g.remove_nodes_from(old_ids)
    graph.add(parent, node, "branch", pos=pos, merge=edit.merge, label=label, span=span)
    for k in range(edit.paths):
        path = f"{node}.{k}"
        if inner:
            start, end = split.inputs[k]
            graph.add(node, path, "seq", pos=k)
            graph.add(path, f"{path}.0", "op", pos=0, op="slice", args={"start": start, "end": end})
            _add_subtree(graph, path, path + inner, subtree, SUBTREE_ROOT, pos=1, keep_labels=k == 0)
        else:
            _add_subtree(graph, node, path, subtree, SUBTREE_ROOT, pos=k, keep_labels=k == 0)
        copy_root = path + inner
        if k == 0:
            graph[copy_root]["label"] = None
        else:
            graph[copy_root]["span"] = None
        graph[copy_root].pop("width", None)  # a path alone cannot grow: its output meets the others'
        if split:
            _share_layer(graph[copy_root + split.layer[len(node) :]], split, k)
    return {old: f"{node}.0{inner}{old[len(node) :]}" for old in old_ids}


@dataclass(frozen=True)
class ConcatSplit:
    """How `wrap concat` shares out a layer's channels among its paths: path k's copy of `layer`
    gives `sizes[k]` channels; with `inputs`, path k reads only the input channels
    `[inputs[k][0], inputs[k][1])` (a `slice` before its copy), else the whole input."""

    layer: str
    sizes: tuple[int, ...]
    inputs: tuple[tuple[int, int], ...] = ()


def concat_split(graph: ArchGraph, node: str, paths: int) -> ConcatSplit:
    """How `wrap concat` splits `node`: a weight op, an `identity`, a pool, or a seq of one
    followed by per-channel ops (each path's channels go through them unchanged). A weight op's
    output neurons are shared out; an identity, a pool or a grouped conv acts on each input
    channel group alone, so it is its input channels that are shared out (a grouped conv's groups
    stay aligned only when `paths` divides them). EditError for anything else, with the reason."""
    kids = graph.live_children(node) if graph.kind(node) == "seq" else [node]
    first = kids[0] if kids else node
    splittable = (*WEIGHT_OPS, *INPUT_SPLIT)
    if not all(graph.kind(k) == "op" for k in kids) or graph[first].get("op") not in splittable:
        raise EditError(
            f"wrap concat: {node} must be a weight op, an identity or a pool, or a seq of one followed "
            "by per-channel ops"
        )
    if any(not OPS[graph[k]["op"]].transparent for k in kids[1:]):
        raise EditError(f"wrap concat: {node} holds an op after {first} that is not per-channel")
    op, args = graph[first]["op"], graph[first]["args"]
    grouped = op == "conv" and args.get("groups", 1) != 1
    if op in WEIGHT_OPS and not grouped:
        if args["out"] < paths:
            raise EditError(f"wrap concat: {node} has {args['out']} neurons, fewer than {paths} paths")
        return ConcatSplit(first, tuple(concat_sizes(args["out"], paths)))
    if grouped and args["groups"] % paths:
        raise EditError(
            f"wrap concat: {first} is a conv of {args['groups']} groups, which {paths} paths cannot share: "
            "each path must hold whole groups"
        )
    shape = infer_shapes(graph).get(first)
    if shape is None:
        raise EditError(f"wrap concat: {first} is not live (an unchosen choice path)")
    channels = shape.inp[0]
    if channels < paths:
        raise EditError(f"wrap concat: {first} reads {channels} channels, fewer than {paths} paths")
    shares = concat_sizes(channels, paths)  # equal for a grouped conv: `paths` divides its groups
    bounds = [(sum(shares[:k]), sum(shares[: k + 1])) for k in range(paths)]
    sizes = concat_sizes(args["out"], paths) if op == "conv" else shares
    return ConcatSplit(first, tuple(sizes), tuple(bounds))


def _share_layer(attrs: dict[str, Any], split: ConcatSplit, k: int) -> None:
    """Path k's copy of the split layer: its share of the output channels (and of a grouped
    conv's groups); it cannot widen alone."""
    attrs.pop("width", None)
    if "out" in attrs["args"]:
        args = {**attrs["args"], "out": split.sizes[k]}
        if split.inputs:
            args["groups"] = args["groups"] // len(split.sizes)
        attrs["args"] = args


def concat_sizes(out: int, paths: int) -> list[int]:
    """How `wrap concat` shares `out` neurons among `paths` paths: as equal as possible, the
    first paths one larger."""
    base, extra = divmod(out, paths)
    return [base + (k < extra) for k in range(paths)]


def _insert(graph: ArchGraph, edit: Insert) -> Renames:
    kind = graph.kind(edit.parent)
    if kind not in ("seq", "branch"):
        raise EditError(f"insert: {edit.parent} is a {kind}; ops go into a seq or a branch")
    if edit.op not in OPS:
        raise EditError(f"insert: unknown op {edit.op!r}")
    sig, args = OPS[edit.op], dict(edit.args)
    unknown = set(args) - set(sig.names)
    if unknown:
        raise EditError(f"insert: {edit.op} takes no argument {sorted(unknown)[0]!r}")
    kids = graph.children(edit.parent)
    if not 0 <= edit.pos <= len(kids):
        raise EditError(f"insert: {edit.parent} has {len(kids)} children, no position {edit.pos}")
    for later in kids[edit.pos :]:
        graph.g.edges[edit.parent, later]["pos"] += 1
    before = graph.g.edges[edit.parent, kids[edit.pos - 1]]["pos"] if edit.pos else -1
    numbers = [int(s) for c in kids if (s := c.rsplit(".", 1)[1]).isdigit()]
    node = f"{edit.parent}.{max(numbers, default=len(kids) - 1) + 1}"
    graph.add(edit.parent, node, "op", pos=before + 1, op=edit.op, args={**sig.defaults(), **args})
    return {}


def _group(graph: ArchGraph, edit: Group) -> Renames:
    node = edit.node
    if node == graph.root:
        raise EditError("group: the model's root has no siblings to group")
    parent = graph.parent(node)
    kids = graph.children(parent)
    start = kids.index(node)
    if edit.count < 1 or start + edit.count > len(kids):
        raise EditError(f"group: {parent} has no {edit.count} children from {node} on")
    if graph.kind(parent) != "seq" and edit.count != 1:
        raise EditError(f"group: {parent} is a {graph.kind(parent)}; only a seq's children group")
    moved = kids[start : start + edit.count]
    pos = graph.g.edges[parent, node]["pos"]
    subtrees = [_subtree(graph, m) for m in moved]
    renames: Renames = {}
    for i, m in enumerate(moved):
        renames.update({old: f"{node}.{i}{old[len(m) :]}" for old in graph.walk(m, live_only=False)})
        graph.g.remove_nodes_from(list(graph.walk(m, live_only=False)))
    graph.add(parent, node, "seq", pos=pos)
    for i, sub in enumerate(subtrees):
        _add_subtree(graph, node, f"{node}.{i}", sub, SUBTREE_ROOT, pos=i)
    return renames


def _graft(graph: ArchGraph, edit: Graft) -> Renames:
    node = edit.node
    if node == graph.root:
        raise EditError("graft: the model's root cannot be replaced")
    donor = from_json({"root": SUBTREE_ROOT, "input_shape": [], **json.loads(edit.donor)})
    parent = graph.parent(node)
    pos = graph.g.edges[parent, node]["pos"]
    graph.g.remove_nodes_from(list(graph.walk(node, live_only=False)))
    _add_subtree(graph, parent, node, donor, SUBTREE_ROOT, pos=pos)
    return {}


# ---------------------------------------------------------------- subtrees


def subtree_json(graph: ArchGraph, node: str) -> str:
    """The subtree under `node` as node-link JSON text with ids relative to `*` (a `Graft`'s
    donor); canonical (sorted keys), so equal subtrees give equal text."""
    sub = _subtree(graph, node)
    data = to_json(sub)
    return strict_json.dumps({"nodes": data["nodes"], "edges": data["edges"]}, sort_keys=True)


def _subtree(graph: ArchGraph, node: str) -> ArchGraph:
    """A copy of the subtree under `node`, ids relative to SUBTREE_ROOT."""
    sub = ArchGraph(SUBTREE_ROOT, graph.input_shape, graph.classes)

    def rel(n: str) -> str:
        return SUBTREE_ROOT + n[len(node) :]

    for n in graph.walk(node, live_only=False):
        sub.g.add_node(rel(n), **_copied_attrs(graph[n]))
        if n != node:
            p = graph.parent(n)
            sub.g.add_edge(rel(p), rel(n), pos=graph.g.edges[p, n]["pos"])
    return sub


def _copied_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(dict(attrs))


def _add_subtree(
    graph: ArchGraph, parent: str, node: str, sub: ArchGraph, root: str, *, pos: int, keep_labels: bool = True
) -> None:
    """Add the subtree `sub` (rooted at `root`) under `parent` at `pos`, its root taking id `node`."""

    def real(rel: str) -> str:
        return node + rel[len(root) :]

    for rel in sub.walk(root, live_only=False):
        attrs = _copied_attrs(sub[rel])
        kind = attrs.pop("kind")
        if not keep_labels:
            attrs["label"] = None
        if rel == root:
            graph.add(parent, real(rel), kind, pos=pos, **attrs)
        else:
            up = sub.parent(rel)
            graph.add(real(up), real(rel), kind, pos=sub.g.edges[up, rel]["pos"], **attrs)


def _next_pos(graph: ArchGraph, parent: str) -> int:
    return max((graph.g.edges[parent, c]["pos"] for c in graph.children(parent)), default=-1) + 1


# ---------------------------------------------------------------- JSON


def edit_to_json(edit: Edit) -> dict[str, Any]:
    """The edit as plain JSON data: `{"kind": "widen", "node": ..., "added": [...]}`."""
    kind = _KIND_OF[type(edit)]
    data: dict[str, Any] = {"kind": kind}
    if isinstance(edit, Several):
        return {"kind": kind, "edits": [edit_to_json(part) for part in edit.edits]}
    for name, value in edit.__dict__.items():
        if isinstance(edit, Graft) and name == "donor":
            value = json.loads(value)
        elif isinstance(edit, Insert) and name == "args":
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        data[name] = value
    return data


def edit_from_json(data: Any) -> Edit:
    """The edit `edit_to_json` wrote; EditError for anything else, each field's type checked (a
    logged edit is read back from a file a person can edit: `"added": "abc"` must not widen by
    three)."""
    if not isinstance(data, dict):
        raise EditError(f"an edit is a JSON object, not {reprlib.repr(data)}")
    kind = data.get("kind")
    if kind not in EDIT_KINDS:
        raise EditError(f"unknown edit kind {kind!r} (known: {', '.join(EDIT_KINDS)})")
    fields = {k: v for k, v in data.items() if k != "kind"}
    for name, value in fields.items():
        expected = _FIELD_TYPES.get(name)
        if expected is not None and not _has_type(value, expected):
            what = "a string" if expected is str else "an integer"
            raise EditError(f"{kind} edit: {name} must be {what}, not {reprlib.repr(value)}")
    try:
        if kind == "widen":
            fields["added"] = _neuron_sources(fields["added"])
        elif kind == "insert":
            fields["args"] = tuple(_mapping(fields.get("args", {}), "insert edit: args").items())
        elif kind == "graft":
            fields["donor"] = _donor_text(fields["donor"])
        elif kind == "several":
            if not isinstance(fields["edits"], list):
                raise EditError(f"several edit: edits must be a list, not {reprlib.repr(fields['edits'])}")
            fields["edits"] = tuple(edit_from_json(part) for part in fields["edits"])
        return EDIT_KINDS[kind](**fields)
    except (KeyError, TypeError) as e:
        raise EditError(f"malformed {kind} edit {reprlib.repr(data)}: {e}") from None


_FIELD_TYPES = {"node": str, "seq": str, "parent": str, "merge": str, "op": str, "paths": int, "pos": int,
                "count": int}  # fmt: skip


def _has_type(value: Any, expected: type) -> bool:
    return isinstance(value, expected) and not isinstance(value, bool)


def _neuron_sources(added: Any) -> tuple[int | None, ...]:
    """A widen edit's `added`: a list of neuron indices (or null for a fresh neuron)."""
    if not isinstance(added, list) or not all(s is None or (_has_type(s, int) and s >= 0) for s in added):
        raise EditError(
            f"widen edit: added must be a list of neuron indices or nulls, not {reprlib.repr(added)}"
        )
    return tuple(added)


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EditError(f"{what} must be a JSON object, not {reprlib.repr(value)}")
    return value


def _donor_text(donor: Any) -> str:
    """A graft's donor as the canonical text `Graft` holds, checked to be a subtree (`nodes` and
    `edges` of a tree under SUBTREE_ROOT)."""
    donor = _mapping(donor, "graft edit: donor")
    if set(donor) != {"nodes", "edges"}:
        raise EditError(f"graft edit: donor must hold nodes and edges only, not {sorted(donor)}")
    try:
        check_node_link({"root": SUBTREE_ROOT, "input_shape": [], **donor})
    except GraphFormatError as e:
        raise EditError(f"graft edit: the donor is not a subtree: {e}") from None
    return strict_json.dumps(donor, sort_keys=True)
