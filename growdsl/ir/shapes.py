"""Shape inference: the per-sample input and output shape of every live node of an `ArchGraph`.

Shapes exclude the batch dimension (`[C, H, W]` for images, `[F]` for flat features). Data flow
follows the tree (see `graph.py`): a `seq` chains its children (an empty one is the identity), a
`branch` feeds its input to every path and merges their outputs, a `choice` behaves as its live
child. The compiler builds modules from these shapes, so the rules here are the ones torch
applies: `conv` and the pools use `floor((H + 2p - k) / stride) + 1`, `sepconv` pads by `k // 2`,
`slice(start, end)` keeps channels `[start, end)` of dimension 0 (1 with the batch), and
`pad_channels(out)` appends zero channels to it up to `out`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from growdsl.errors import ShapeError
from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import OPS, resolved_args

Shape = tuple[int, ...]


@dataclass(frozen=True)
class NodeShapes:
    """What a node receives and what it gives, per sample."""

    inp: Shape
    out: Shape


def fmt_shape(shape: Shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def infer_shapes(graph: ArchGraph) -> dict[str, NodeShapes]:
    """Shapes of every live node, in one pass over the tree; raises `ShapeError` on a mismatch."""
    shapes: dict[str, NodeShapes] = {}
    _visit(graph, graph.root, tuple(graph.input_shape), shapes)
    return shapes


def _visit(graph: ArchGraph, node: str, inp: Shape, shapes: dict[str, NodeShapes]) -> Shape:
    kind = graph.kind(node)
    if kind == "op":
        out = op_output_shape(graph, node, inp)
    elif kind == "branch":
        out = _branch_output(graph, node, inp, shapes)
    else:  # seq and choice chain their live children (a choice has exactly one)
        out = inp
        for child in graph.live_children(node):
            out = _visit(graph, child, out, shapes)
    shapes[node] = NodeShapes(inp, out)
    return out


def _branch_output(graph: ArchGraph, node: str, inp: Shape, shapes: dict[str, NodeShapes]) -> Shape:
    merge = graph[node]["merge"]
    paths = graph.live_children(node)
    outs = [(p, _visit(graph, p, inp, shapes)) for p in paths]
    if not outs:
        return inp
    first_path, first = outs[0]
    for path, out in outs[1:]:
        same = out == first if merge != "concat" else (len(out) == len(first) and out[1:] == first[1:])
        if not same:
            need = "the same shape" if merge != "concat" else "the same shape after the channel dim"
            raise ShapeError(
                f"branch {merge} at {node}: path {first_path} gives {fmt_shape(first)} "
                f"but path {path} gives {fmt_shape(out)}",
                graph[node].get("span"),
                hint=f"`branch {merge}` needs {need} from every path",
            )
    if merge == "concat":
        return (sum(out[0] for _, out in outs), *first[1:])
    return first


# ---------------------------------------------------------------- op rules


def op_output_shape(graph: ArchGraph, node: str, inp: Shape) -> Shape:
    """The output shape of op `node` given its input shape; the one rule table for every op."""
    attrs = graph[node]
    op = attrs["op"]
    args = resolved_args(op, attrs.get("args", {}))
    rule = OPS[op].shape
    if rule is not None:  # a plugin op: its own rule; a ValueError is the user's shape mistake
        try:
            return tuple(rule(args, inp))
        except ValueError as why:
            raise _error(graph, node, str(why)) from None
    if op == "linear":
        if len(inp) != 1:
            flat_hint = "add `flatten` before it"
            raise _error(graph, node, f"needs a flat input but gets {fmt_shape(inp)}: {flat_hint}")
        return (args["out"],)
    if op in ("conv", "sepconv"):
        channels = _image(graph, node, inp)
        groups = args.get("groups", 1)
        if op == "conv" and (channels % groups or args["out"] % groups):
            raise _error(
                graph,
                node,
                f"has groups {groups}, which must divide its {channels} input and {args['out']} "
                "output channels",
            )
        padding = args.get("padding", 0)
        return (args["out"], *_window(graph, node, inp, args["k"], args["stride"], padding))
    if op in ("maxpool", "avgpool"):
        _image(graph, node, inp)
        padding = args.get("padding", 0)
        if not 0 <= padding <= args["k"] // 2:
            raise _error(graph, node, f"has padding {padding}; a pool's padding is at most k // 2")
        return (inp[0], *_window(graph, node, inp, args["k"], args["stride"], padding))
    if op == "gap":
        return (_image(graph, node, inp), 1, 1)
    if op == "bn":
        if len(inp) not in (1, 3):
            raise _error(graph, node, f"needs a [C] or [C, H, W] input but gets {fmt_shape(inp)}")
        return inp
    if op == "flatten":
        return (math.prod(inp),)
    if op == "slice":
        start, end = args["start"], args["end"]
        if not start < end <= inp[0]:
            raise _error(
                graph,
                node,
                f"takes channels [{start}, {end}) of a {fmt_shape(inp)} input: it needs "
                f"start < end <= {inp[0]}",
            )
        return (end - start, *inp[1:])
    if op == "pad_channels":
        if args["out"] < inp[0]:
            message = f"pads {fmt_shape(inp)} to {args['out']} channels: it cannot drop channels"
            raise _error(graph, node, message)
        return (args["out"], *inp[1:])
    return inp  # activations, dropout, identity keep the shape


def _image(graph: ArchGraph, node: str, inp: Shape) -> int:
    if len(inp) != 3:
        raise _error(graph, node, f"needs a [C, H, W] input but gets {fmt_shape(inp)}")
    return inp[0]


def _window(graph: ArchGraph, node: str, inp: Shape, k: int, stride: int, padding: int) -> Shape:
    size = tuple((s + 2 * padding - k) // stride + 1 for s in inp[1:])
    if min(size) < 1:
        raise _error(
            graph,
            node,
            f"with k {k}, stride {stride}, padding {padding} shrinks {fmt_shape(inp)} below 1x1",
            "use a smaller `k` or `stride`, or fewer downsampling steps before it",
        )
    return size


def _error(graph: ArchGraph, node: str, message: str, hint: str | None = None) -> ShapeError:
    return ShapeError(f"{graph[node]['op']} at {node} {message}", graph[node].get("span"), hint=hint)
