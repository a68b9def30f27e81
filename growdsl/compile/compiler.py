"""`compile_graph`: an `ArchGraph` to a `GrowNet`, a torch module whose names are node ids.

The module tree mirrors the graph tree: a `seq` becomes a `Chain`, a `branch` a `Branch*` of
its merge kind, a `choice` a `Choice` holding only its chosen path, and every op a plain torch
module sized by `infer_shapes`. Each container registers a child under the last segment of the
child's node id, and `GrowNet` holds the whole tree under the root id, so every state-dict key
is `<node id>.<param name>` (`mlp.hidden1.weight`): weights, checkpoints and growth history all
name the same nodes.
"""

from __future__ import annotations

from torch import nn

from growdsl.compile.containers import BRANCHES, Chain, Choice
from growdsl.compile.names import check_name
from growdsl.compile.ops import build_op
from growdsl.ir.graph import ArchGraph
from growdsl.ir.shapes import NodeShapes, infer_shapes


class GrowNet(Chain):
    """The compiled network: the root node's module, registered under the root id.

    `graph` is the architecture it was compiled from; the module is derived from it, never the
    other way round.
    """

    def __init__(self, graph: ArchGraph, body: nn.Module) -> None:
        super().__init__({graph.root: body})
        self.graph = graph

    def module_at(self, node_id: str) -> nn.Module:
        """The module compiled for `node_id` (a container for `seq`/`branch`/`choice` nodes)."""
        if node_id not in self.graph:
            raise KeyError(f"no node {node_id!r} in the graph")
        try:
            return self.get_submodule(node_id)
        except AttributeError:
            raise KeyError(f"node {node_id!r} lies on an unchosen choice path: it has no module") from None


def compile_graph(graph: ArchGraph) -> GrowNet:
    """Build the `GrowNet` for `graph`; parameters take torch's default init from the global RNG.

    Modules are created in pre-order, in data-flow order, so a seeded compile is reproducible.
    Raises `ShapeError` (from shape inference) where the shapes do not fit together.
    """
    shapes = infer_shapes(graph)
    check_name(graph, graph.root, graph.root)
    return GrowNet(graph, _build(graph, graph.root, shapes))


def _build(graph: ArchGraph, node_id: str, shapes: dict[str, NodeShapes]) -> nn.Module:
    attrs = graph[node_id]
    live = graph.live_children(node_id)
    kind = attrs["kind"]
    if kind == "op":
        return build_op(attrs["op"], dict(attrs.get("args", {})), tuple(shapes[node_id].inp))
    children = {_child_name(graph, node_id, c): _build(graph, c, shapes) for c in live}
    if kind == "branch":
        return BRANCHES[attrs["merge"]](children)
    if kind == "choice":
        return Choice(children)
    return Chain(children)


def _child_name(graph: ArchGraph, parent: str, child: str) -> str:
    """The last segment of `child`'s id, which must be `<parent id>.<segment>`."""
    prefix = parent + "."
    name = child[len(prefix) :]
    if not child.startswith(prefix) or not name or "." in name:
        raise ValueError(f"node id {child!r} is not '{parent}.<name>', so no module path can follow it")
    check_name(graph, child, name)
    return name
