"""Shared cells: a `block` used several times is one cell (docs/methods/pathlevel.md, "Tree-
structured cells"). Lowering marks each use's seq with `block=<name>`; path-level growth changes
every use whose tree still has the same form, and `growdsl show` and the report's architecture
picture draw that tree once, at the cell's first use, and the other uses as references to it.
"""

from __future__ import annotations

from growdsl.ir.graph import ArchGraph


def cell_use(graph: ArchGraph, node: str) -> str | None:
    """The innermost block use (a seq lowered from a `block`) holding `node`, or None."""
    up = graph.parent(node)
    while up is not None:
        if graph[up].get("block"):
            return up
        up = graph.parent(up)
    return None


def same_tree(graph: ArchGraph, a: str, b: str) -> bool:
    """Whether the subtrees under `a` and `b` have the same structure (kinds, ops, merges and
    relative ids; widths may differ: a block's uses may take different arguments)."""

    def form(root: str) -> list[tuple]:
        return [
            (n[len(root) :], graph.kind(n), graph[n].get("op"), graph[n].get("merge"))
            for n in graph.walk(root, live_only=False)
        ]

    return form(a) == form(b)


def block_uses(graph: ArchGraph, block: str) -> list[str]:
    """The live uses of `block`, in data-flow order."""
    return [n for n in graph.walk() if graph[n].get("block") == block]


def repeated_uses(graph: ArchGraph) -> dict[str, str]:
    """Each use of a block that repeats the tree of the block's first use -> that first use: the
    uses a picture of the cell draws as references instead of drawing the tree again."""
    first: dict[str, str] = {}
    repeated = {}
    for node in graph.walk():
        block = graph[node].get("block")
        if not block:
            continue
        if block not in first:
            first[block] = node
        elif same_tree(graph, first[block], node):
            repeated[node] = first[block]
    return repeated


def cell_note(graph: ArchGraph, use: str, repeats: dict[str, str]) -> str:
    """What a block use is as a cell: the first use (the tree drawn) lists every use; a later use
    with the same tree points to it (`repeated_uses`); a use whose tree a
    `shared: false` change made differ says so."""
    block = graph[use]["block"]
    uses = block_uses(graph, block)
    if use in repeats:
        return f"cell {block}, same tree as {repeats[use]}"
    if use != uses[0]:
        return f"cell {block}, a tree of its own"
    return f"cell {block}" + (f", {len(uses)} uses: {', '.join(uses)}" if len(uses) > 1 else "")
