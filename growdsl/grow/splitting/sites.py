"""Where splitting applies: a weight op whose output goes, optionally through `bn`, into an
activation with a curvature (`P -> [bn] -> σ`).

The splitting matrix needs the neuron's output to pass through a known σ before anything mixes
channels, so the path from the weight op to its activation must be a straight line of ops. Any
other layout is reported with the reason, never guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass

from growdsl.grow.splitting.curvature import CURVATURES
from growdsl.ir.dataflow import DataFlow
from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import WEIGHT_OPS


@dataclass(frozen=True)
class SplitSite:
    """A splittable weight op: `node` (linear, conv or sepconv), its `bn` (or None) and the
    activation node `act` whose op name `activation` keys its curvature."""

    node: str
    bn: str | None
    act: str
    activation: str


class NotSplittable(Exception):
    """Why a weight op cannot be split; carried as data into the transform's report."""


def _branches_above(graph: ArchGraph, node: str) -> set[str]:
    out = set()
    parent = graph.parent(node)
    while parent is not None:
        if graph.kind(parent) == "branch":
            out.add(parent)
        parent = graph.parent(parent)
    return out


def _single_next(flow: DataFlow, node: str) -> str:
    """The one op after `node`, reached without entering or leaving a branch: leaving one merges
    the channels with other paths' (a concat shifts them, an add mixes them) before that op."""
    nxt = flow.next_op(node)
    if not nxt:
        raise NotSplittable("its output is the network's output, with no activation after it")
    if len(nxt) > 1:
        raise NotSplittable("its output fans out to several paths before any activation")
    if _branches_above(flow.graph, nxt[0]) != _branches_above(flow.graph, node):
        raise NotSplittable("its channels pass a branch merge before reaching an activation")
    return nxt[0]


def find_site(graph: ArchGraph, node: str, flow: DataFlow | None = None) -> SplitSite:
    """The split site of weight op `node`, or NotSplittable saying why there is none."""
    flow = flow or DataFlow(graph)
    attrs = graph[node]
    if attrs["kind"] != "op" or attrs["op"] not in WEIGHT_OPS:
        raise NotSplittable("it is not a weight op (linear, conv or sepconv)")
    if attrs["op"] == "conv" and attrs.get("args", {}).get("groups", 1) != 1:
        raise NotSplittable("it is a grouped conv, whose filters do not see the whole input")
    nxt = _single_next(flow, node)
    bn = None
    if graph[nxt]["op"] == "bn":
        bn, nxt = nxt, _single_next(flow, nxt)
    op = graph[nxt]["op"]
    if op not in CURVATURES:
        raise NotSplittable(
            f"its output goes into '{op}', not an activation with a second derivative "
            f"({', '.join(CURVATURES)}): a split cannot change the loss to second order"
        )
    return SplitSite(node, bn, nxt, op)
