"""Graphviz DOT text for an `ArchGraph`, written by hand so growdsl needs no graphviz package.

Every node of the tree is a DOT node, edges run parent -> child in `pos` order; the node kind
picks the drawing: ops are boxes (op text, output shape, params), a `seq` is a folder, a `branch`
a diamond naming its merge, a `choice` a hexagon. Unchosen choice paths are drawn dashed. A
block use says which cell it is (`growdsl.ir.cells.cell_note`); every use keeps its nodes (a DOT
file is for tools too), the report's own drawer draws a shared cell's tree once.
"""

from __future__ import annotations

from growdsl.ir.cells import cell_note, repeated_uses
from growdsl.ir.graph import ArchGraph
from growdsl.ir.shapes import NodeShapes, fmt_shape

_SHAPES = {"op": "box", "seq": "folder", "branch": "diamond", "choice": "hexagon"}


def to_dot(
    graph: ArchGraph,
    shapes: dict[str, NodeShapes] | None = None,
    costs: dict[str, tuple[int, int]] | None = None,
) -> str:
    """The DOT text of `graph`; `shapes` and `costs` (from `infer_shapes`, `costs`) add detail."""
    live = set(graph.walk())
    repeats = repeated_uses(graph)
    lines = [
        f"digraph {_quote(graph.root)} {{",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=10];',
        f"  label={_quote(f'{graph.root}: input {fmt_shape(graph.input_shape)}')};",
    ]
    for node in graph.walk(live_only=False):
        text = [node, graph.describe(node)]
        if graph[node].get("block") and node in live:
            text.append(cell_note(graph, node, repeats))
        if shapes and node in shapes:
            text.append(f"out {fmt_shape(shapes[node].out)}")
        if costs and node in costs and costs[node][0]:
            text.append(f"{costs[node][0]:,} params")
        style = "" if node in live else ", style=dashed"
        label = _quote("\n".join(text))
        lines.append(f"  {_quote(node)} [shape={_SHAPES[graph.kind(node)]}, label={label}{style}];")
    for node in graph.walk(live_only=False):
        for child in graph.children(node):
            style = "" if child in live else " [style=dashed]"
            lines.append(f"  {_quote(node)} -> {_quote(child)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as `\\n`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
