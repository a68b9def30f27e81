"""`growdsl show`: the model tree as a person reads it, with shapes, sizes and growable ranges."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.tree import Tree

from growdsl.ir import ArchGraph, NodeShapes
from growdsl.ir.cells import cell_note, repeated_uses

UNWRAPPED = 1_000_000  # columns: wider than any line, and rich pads nothing in a tree


def _console() -> Console:
    """On a terminal, rich fits the tree to the window; in a pipe or a file (where rich would assume
    80 columns) a node's line is never wrapped, so it stays one line for grep, diff and tests."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else UNWRAPPED)


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _line(
    graph: ArchGraph,
    node: str,
    shapes: dict[str, NodeShapes],
    costs: dict[str, tuple[int, int]],
    repeats: dict[str, str],
) -> str:
    text = f"[bold]{node}[/bold]  {graph.describe(node)}"
    block = graph[node].get("block")
    if block:  # a block's uses are one cell: path-level growth changes them together
        text += f"  [magenta]{cell_note(graph, node, repeats)}[/magenta]"
    if node in shapes:
        s = shapes[node]
        text += f"  [cyan]{_shape(s.inp)} -> {_shape(s.out)}[/cyan]"
    params, flops = costs.get(node, (0, 0))
    if params or flops:
        text += f"  [green]{params:,} params, {flops:,} FLOPs[/green]"
    return text


def render_tree(
    graph: ArchGraph,
    shapes: dict[str, NodeShapes],
    costs: dict[str, tuple[int, int]],
    console: Console | None = None,
) -> None:
    """Print the live tree (unchosen choice paths are shown dimmed, without shapes). A shared
    cell's tree is printed once, at its first use; a later use with the same tree is one line
    (`cell_note`), its nodes' ids being the first use's with the use's id in front."""
    console = console or _console()
    repeats = repeated_uses(graph)

    def visit(node: str, into: Tree) -> None:
        if node in repeats:
            return
        live = set(graph.live_children(node))
        for child in graph.children(node):
            if child in live:
                visit(child, into.add(_line(graph, child, shapes, costs, repeats)))
            else:
                visit(child, into.add(f"[dim]{child}  {graph.describe(child)}  (not chosen)[/dim]"))

    tree = Tree(_line(graph, graph.root, shapes, costs, repeats))
    visit(graph.root, tree)
    console.print(tree)
