"""Where each path-level transform applies, and the edit it makes there (docs/methods/pathlevel.md).

Each builder takes a graph and a node and returns the `Edit` (`growdsl.ir.edits`) of one
path-level transform at that node, or None where it does not apply:

- `replicate_add(graph, weight_op, copies)`: the op's *layer* (the op and the `bn` right after
  it) becomes `branch mean` of `copies` copies: `Wrap`, after a `Group` when the layer is two
  siblings of a longer seq.
- `split_concat(graph, node)`: the layer becomes `branch concat` of two halves of its output
  neurons (the bn sliced with them): the same, with merge `concat`. At an `identity`, a pool or a
  grouped conv (`INPUT_SPLIT`) the halves are of its input channels, each path reading its
  half through a `slice` (`growdsl.ir.edits.concat_split`).
- `insert_identity(graph, weight_op)`: an `identity` op right after the layer (`Insert`; a layer
  that is a whole branch path is first grouped into a seq).
- `replace_identity(graph, identity, op, k)`: an `identity` op replaced by `seq { conv bn }`,
  `seq { sepconv bn }` or a size-keeping pool (`Graft`); the transform's init makes it the
  identity again.

`every_use` makes one change to every use of a shared cell (a `block` used several times): the
builder runs at the corresponding node of each use, on the graph as the earlier uses' edits left
it, and the edits become one `Several`.
"""

from __future__ import annotations

from collections.abc import Callable

from growdsl import strict_json
from growdsl.ir.cells import block_uses, cell_use, same_tree
from growdsl.ir.edits import (
    Edit,
    EditError,
    Graft,
    Group,
    Insert,
    Several,
    Wrap,
    apply_in_place,
    concat_split,
)
from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import resolved_args
from growdsl.ir.shapes import infer_shapes

REPLACEMENTS = ("conv", "sepconv", "maxpool", "avgpool")
Builder = Callable[[ArchGraph, str], Edit | None]


def layer(graph: ArchGraph, weight_op: str) -> list[str]:
    """The siblings that form `weight_op`'s layer: the op, and the `bn` right after it in a seq."""
    parent = graph.parent(weight_op)
    if parent is None or graph.kind(parent) != "seq":
        return [weight_op]
    kids = graph.live_children(parent)
    i = kids.index(weight_op)
    after = kids[i + 1] if i + 1 < len(kids) else None
    return [weight_op, after] if after and graph[after].get("op") == "bn" else [weight_op]


def _plain_seq(graph: ArchGraph, node: str) -> bool:
    """A seq a branch may take the place of: not the root, not a block use, not a repeat."""
    attrs = graph[node]
    return (
        node != graph.root and graph.kind(node) == "seq" and not attrs.get("block") and not attrs.get("depth")
    )


def _wrap_layer(graph: ArchGraph, weight_op: str, merge: str, paths: int) -> Edit | None:
    parent = graph.parent(weight_op)
    if parent is None or graph.kind(parent) == "choice":
        return None
    unit = layer(graph, weight_op)
    if len(unit) == 1:
        return Wrap(weight_op, merge, paths)
    if graph.live_children(parent) == unit and _plain_seq(graph, parent):
        return Wrap(parent, merge, paths)  # the layer is already a seq of its own
    return Several((Group(weight_op, len(unit)), Wrap(weight_op, merge, paths)))


def replicate_add(graph: ArchGraph, weight_op: str, copies: int = 2) -> Edit | None:
    """Replication-add: the layer becomes `branch mean` of `copies` copies (exact: the mean of
    equal paths is each path)."""
    return _wrap_layer(graph, weight_op, "mean", copies)


def split_concat(graph: ArchGraph, node: str) -> Edit | None:
    """Split-concat: the layer's channels shared out between two paths merged by `concat` (the
    output neurons of a weight op; the input channels of an identity, a pool or a grouped conv);
    None where `concat_split` refuses (fewer than two channels, a conv of odd groups)."""
    edit = _wrap_layer(graph, node, "concat", 2)
    if edit is None:
        return None
    try:
        concat_split(graph, node, 2)
    except EditError:
        return None
    return edit


def insert_identity(graph: ArchGraph, weight_op: str, after_activation: bool = False) -> Edit | None:
    """Insert: an `identity` op right after the layer, where a later `replace` can grow an edge;
    with `after_activation`, after the `relu` that follows the layer in its seq, if one does (the
    authors' layer is weight, BN and activation: the new edge then reads a non-negative input)."""
    parent = graph.parent(weight_op)
    if parent is None or graph.kind(parent) == "choice":
        return None
    if graph.kind(parent) == "branch":
        return Several((Group(weight_op, 1), Insert(weight_op, 1, "identity")))
    unit = layer(graph, weight_op)
    kids = graph.live_children(parent)
    pos = kids.index(unit[-1]) + 1
    if after_activation and pos < len(kids) and graph[kids[pos]].get("op") == "relu":
        pos += 1
    return Insert(parent, pos, "identity")


def replace_identity(graph: ArchGraph, node: str, op: str, k: int = 3, relu: bool = False) -> Edit | None:
    """Replace: the `identity` op `node` becomes `op` at the width of its input: `conv` or
    `sepconv` followed by a `bn` (on a flat input `conv` is a `linear`), and with `relu` a `relu`
    after it (the authors' conv-BN-ReLU layer), or a `k x k` pool at stride 1 padded to keep the
    size; None where `op` does not fit the input."""
    if graph[node].get("op") != "identity":
        return None
    shape = infer_shapes(graph)[node].inp
    channels = shape[0]
    act = [("relu", {})] if relu else []
    if len(shape) == 1 and op == "conv":
        ops = [("linear", {"out": channels}), ("bn", {}), *act]
    elif len(shape) != 3:
        return None
    elif op in ("conv", "sepconv"):
        ops = [(op, {"out": channels, "k": k}), ("bn", {}), *act]
    else:
        ops = [(op, {"k": k, "stride": 1, "padding": k // 2})]
    return Graft(node, donor_json(ops))


def donor_json(ops: list[tuple[str, dict]]) -> str:
    """A `Graft` donor: one op, or a seq of ops, with ids relative to `*` and resolved args."""

    def op_node(id_: str, op: str, args: dict) -> dict:
        return {
            "id": id_,
            "kind": "op",
            "op": op,
            "args": resolved_args(op, args),
            "label": None,
            "span": None,
        }

    if len(ops) == 1:
        nodes, edges = [op_node("*", *ops[0])], []
    else:
        nodes = [{"id": "*", "kind": "seq", "label": None, "span": None}]
        nodes += [op_node(f"*.{i}", op, args) for i, (op, args) in enumerate(ops)]
        edges = [{"source": "*", "target": f"*.{i}", "pos": i} for i in range(len(ops))]
    return strict_json.dumps({"nodes": nodes, "edges": edges}, sort_keys=True)


# ---------------------------------------------------------------- shared cells


def uses_of(graph: ArchGraph, node: str) -> list[str]:
    """`node` and its counterparts in every other use of its cell whose tree still matches."""
    use = cell_use(graph, node)
    if use is None:
        return [node]
    rel = node[len(use) :]
    uses = block_uses(graph, graph[use]["block"])
    return [u + rel for u in uses if (u == use or same_tree(graph, use, u)) and u + rel in graph]


def every_use(graph: ArchGraph, node: str, build: Builder, shared: bool = True) -> Edit | None:
    """The edit `build` makes at `node` and, with `shared`, at its counterpart in every other use
    of its cell: one `Several` whose parts come use after use. None when `build` refuses one."""
    nodes = uses_of(graph, node) if shared else [node]
    planned, parts = graph.copy(), []
    for n in nodes:
        edit = build(planned, n)
        if edit is None:
            return None
        apply_in_place(planned, edit)
        parts.extend(edit.edits if isinstance(edit, Several) else (edit,))
    return parts[0] if len(parts) == 1 else Several(tuple(parts))
