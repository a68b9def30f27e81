"""Parameters and FLOPs of a graph, per node (its live subtree) and in total.

The counts are the ones torch reports for the compiled module, so budgets (`until params > 20k`)
mean what a user measures:

- params: the `numel` of every parameter (`sum(p.numel() for p in module.parameters())`);
  batch norm has a weight and a bias per channel, its running statistics are buffers.
- FLOPs: what `torch.utils.flop_counter.FlopCounterMode` counts for a forward pass of one
  sample: 2 per multiply-accumulate of a matmul or convolution (`addmm`, `convolution`), and
  nothing for biases, normalisation, activations, pooling, channel slices or merges.

A `sepconv` is a bias-free depthwise k x k convolution followed by a pointwise 1 x 1 convolution
with bias (see `growdsl/compile/ops.py`).
"""

from __future__ import annotations

import math

from growdsl.ir.edits import Edit, apply_edit
from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import OPS, resolved_args
from growdsl.ir.shapes import NodeShapes, infer_shapes


def costs(graph: ArchGraph, shapes: dict[str, NodeShapes] | None = None) -> dict[str, tuple[int, int]]:
    """`{node: (params, flops)}` for every live node, each covering the node's live subtree."""
    shapes = shapes if shapes is not None else infer_shapes(graph)
    totals: dict[str, tuple[int, int]] = {}
    for node in reversed(list(graph.walk())):  # children before parents
        if graph.kind(node) == "op":
            totals[node] = op_cost(graph, node, shapes[node])
        else:
            kids = [totals[c] for c in graph.live_children(node)]
            totals[node] = (sum(p for p, _ in kids), sum(f for _, f in kids))
    return totals


def param_count(graph: ArchGraph, node: str | None = None) -> int:
    """Trainable parameters under `node` (the whole network by default)."""
    return costs(graph)[node or graph.root][0]


def flops(graph: ArchGraph, node: str | None = None) -> int:
    """Forward FLOPs of one sample under `node` (the whole network by default)."""
    return costs(graph)[node or graph.root][1]


def op_cost(graph: ArchGraph, node: str, shape: NodeShapes) -> tuple[int, int]:
    """(params, flops) of one op node, given its shapes."""
    attrs = graph[node]
    op = attrs["op"]
    args = resolved_args(op, attrs.get("args", {}))
    inp, out = shape.inp, shape.out
    if OPS[op].cost is not None:  # a plugin op counts its own
        params, flops = OPS[op].cost(args, inp, out)
        return int(params), int(flops)
    if op == "linear":
        bias = out[0] if args["bias"] else 0
        return inp[0] * out[0] + bias, 2 * inp[0] * out[0]
    if op == "conv":
        fan_in = inp[0] // args["groups"] * args["k"] ** 2
        bias = out[0] if args["bias"] else 0
        return out[0] * fan_in + bias, 2 * math.prod(out) * fan_in
    if op == "sepconv":
        spatial = math.prod(out[1:])
        depthwise = inp[0] * args["k"] ** 2
        pointwise = inp[0] * out[0]
        return depthwise + pointwise + out[0], 2 * spatial * (depthwise + pointwise)
    if op == "bn":
        return 2 * inp[0], 0
    return 0, 0


def added_cost(graph: ArchGraph, edit: Edit) -> tuple[int, int]:
    """Params and FLOPs `edit` adds to `graph`, counted exactly on the edited graph (a widening
    adds its rows, batch-norm entries and every consumer's columns; negative for a graft that
    shrinks)."""
    after, _ = apply_edit(graph, edit)
    return param_count(after) - param_count(graph), flops(after) - flops(graph)
