"""A picture of an architecture tree (`architecture.png` in a run's report).

With Graphviz's `dot` program on the PATH, the picture is `dot`'s drawing of the graph's DOT text
(`growdsl.ir.to_dot`, the same text `growdsl show --dot` writes). Without it (it is not a Python
package, so growdsl cannot require it) the tree is laid out here and drawn with matplotlib: each
node one box, children left to right in data-flow order, a parent centred over its children,
one row per depth, the root on top. A shared cell (a `block` used several times,
`growdsl.ir.cells`) is drawn once: its first use holds the tree and lists the uses, a later use
with the same tree is one box that names the first.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from collections.abc import Collection
from pathlib import Path

from growdsl.export import write_atomically
from growdsl.ir import ArchGraph, costs, infer_shapes, to_dot
from growdsl.ir.cells import cell_note, repeated_uses
from growdsl.run.plots import DPI, save_png

DOT_TIMEOUT_S = 30
COLORS = {
    "weights": "#dbe9f6",
    "op": "#eeeeee",
    "seq": "#ffffff",
    "branch": "#fde3c8",
    "choice": "#e8dcf3",
    "cell": "#d9f2d9",
}


def write_architecture_png(graph: ArchGraph, path: Path) -> str:
    """Draw `graph` into `path`; return which drawer did it (`dot` or `matplotlib`)."""
    if shutil.which("dot") and _draw_with_dot(graph, path):
        return "dot"
    save_png(tree_figure(graph), path)
    return "matplotlib"


def _draw_with_dot(graph: ArchGraph, path: Path) -> bool:
    text = to_dot(graph, infer_shapes(graph), costs(graph))

    def render(out: Path) -> None:
        subprocess.run(
            ["dot", "-Tpng", f"-Gdpi={DPI}", "-o", str(out)],
            input=text,
            text=True,
            check=True,
            capture_output=True,
            timeout=DOT_TIMEOUT_S,
        )

    try:
        write_atomically(path, render)
    except (OSError, subprocess.SubprocessError):  # a broken Graphviz install: draw it ourselves
        return False
    return True


def tree_layout(graph: ArchGraph, leaves: Collection[str] = ()) -> dict[str, tuple[float, int]]:
    """Node -> (x, depth): leaves take consecutive x in pre-order, a parent the mean x of its
    first and last child, so no two subtrees overlap. Nodes in `leaves` are drawn without their
    subtrees."""
    where: dict[str, tuple[float, int]] = {}
    next_leaf = 0

    def place(node: str, depth: int) -> float:
        nonlocal next_leaf
        children = [] if node in leaves else graph.live_children(node)
        if not children:
            x = float(next_leaf)
            next_leaf += 1
        else:
            xs = [place(child, depth + 1) for child in children]
            x = (xs[0] + xs[-1]) / 2
        where[node] = (x, depth)
        return x

    place(graph.root, 0)
    return where


def _label(graph: ArchGraph, node: str, params: int, out: tuple[int, ...] | None, cell: str) -> str:
    """Its label (or the model name) when it has one, what it is, which cell it is, its output
    shape and params."""
    name = graph[node].get("label") or (node if node == graph.root else "")
    what = graph.describe(node).removesuffix(f" as {graph[node].get('label')}")
    lines = ([name] if name else []) + textwrap.wrap(what, 20) + textwrap.wrap(cell, 20)
    if out is not None:
        lines.append("-> [" + ", ".join(map(str, out)) + "]")
    if params:
        lines.append(f"{params:,} params")
    return "\n".join(lines)


def _color(graph: ArchGraph, node: str, params: int) -> str:
    if graph[node].get("block"):
        return COLORS["cell"]
    kind = graph.kind(node)
    if kind == "op":
        return COLORS["weights"] if params else COLORS["op"]
    return COLORS.get(kind, COLORS["seq"])


def tree_figure(graph: ArchGraph):  # noqa: ANN201 - a matplotlib Figure, imported lazily
    """The tree laid out by `tree_layout`, one box per live node, with its id's last segment,
    what it is (`graph.describe`) and, for ops with weights, its parameter count; a shared cell's
    tree once (see the module docstring)."""
    from matplotlib.figure import Figure

    repeats = repeated_uses(graph)
    where = tree_layout(graph, repeats)
    shapes = infer_shapes(graph)
    node_costs = costs(graph, shapes)
    width = max(x for x, _ in where.values()) + 1
    depth = max(d for _, d in where.values()) + 1
    fig = Figure(figsize=(min(max(1.5 * width, 5), 60), min(max(1.25 * depth, 2.5), 40)), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(-0.7, width - 0.3)
    ax.set_ylim(-depth + 0.4, 0.6)
    for node, (x, d) in where.items():
        for child in [] if node in repeats else graph.live_children(node):
            cx, cd = where[child]
            ax.plot([x, cx], [-d, -cd], color="#999999", linewidth=0.8, zorder=1)
    for node, (x, d) in where.items():
        params = node_costs.get(node, (0, 0))[0]
        ax.text(
            x,
            -d,
            _label(
                graph,
                node,
                params,
                shapes[node].out if node in shapes else None,
                cell_note(graph, node, repeats) if graph[node].get("block") else "",
            ),
            ha="center",
            va="center",
            fontsize=7,
            zorder=2,
            bbox={
                "boxstyle": "round,pad=0.35",
                "facecolor": _color(graph, node, params),
                "edgecolor": "#777777",
            },
        )
    return fig
