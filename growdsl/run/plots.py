"""The pictures of a run, drawn with matplotlib from its history records alone (so a report can be
rebuilt from `history.jsonl`, and runs compared): the training curves with the growth steps
marked, the curves of several runs overlaid (`growdsl compare`), and a population search's
fitness and lineage (`population_figure`).

Figures are `matplotlib.figure.Figure`s rendered by the Agg backend, never pyplot: no window, no
global backend switch, nothing shared between figures. matplotlib is imported inside the
functions, as `growdsl check` imports this package and draws nothing (growdsl/lazy.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from growdsl.export import write_atomically

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

GROWTH_COLOR = "#d62728"
DPI = 110


@dataclass(frozen=True)
class Series:
    """One curve: what it shows and its (epoch, value) points."""

    title: str
    points: list[tuple[float, float]]
    integer: bool = False  # counts (params, FLOPs): ticks with thousands separators


def epoch_records(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in history if r.get("event") == "epoch"]


def quality(history: list[dict[str, Any]]) -> Series:
    """Held-out accuracy, else held-out loss (a regression run), else training loss (a history
    written before epoch lines carried the held-out loss)."""
    epochs = epoch_records(history)
    if any(r.get("acc") is not None for r in epochs):
        return Series("held-out accuracy", [(r["epoch"], r["acc"]) for r in epochs if r["acc"] is not None])
    if any("held_out_loss" in r for r in epochs):
        points = [(r["epoch"], r["held_out_loss"]) for r in epochs if "held_out_loss" in r]
        return Series("held-out loss", points)
    return training_loss(history)


def training_loss(history: list[dict[str, Any]]) -> Series:
    return Series("training loss", [(r["epoch"], r["loss"]) for r in epoch_records(history)])


def curves(history: list[dict[str, Any]]) -> list[Series]:
    """The four panels of a report: quality, training loss, parameters and FLOPs against epochs."""
    epochs = epoch_records(history)
    return [
        quality(history),
        training_loss(history),
        Series("parameters", [(r["epoch"], r["params"]) for r in epochs], integer=True),
        Series("FLOPs per sample", [(r["epoch"], r["flops"]) for r in epochs if "flops" in r], integer=True),
    ]


def growth_steps(history: list[dict[str, Any]]) -> dict[int, str]:
    """Epoch -> what grew then, one label per epoch: `split hidden1 +6, hidden2 +2`
    (the node's last id segment and the neurons added, or the parameters added)."""
    grown: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in history:
        if r.get("event") != "grow" or "epoch" not in r:
            continue
        detail = r.get("detail") or {}
        if "added" in detail:
            amount = f"+{detail['added']}"
        else:
            amount = f"+{r.get('params_after', 0) - r.get('params_before', 0):,}p"
        grown[r["epoch"]][r.get("transform", "grow")].append(
            f"{str(r.get('node', '')).rsplit('.', 1)[-1]} {amount}"
        )
    return {
        epoch: "; ".join(f"{name} {', '.join(changes)}" for name, changes in by_transform.items())
        for epoch, by_transform in sorted(grown.items())
    }


def _style(ax: Axes, series: Series) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    ax.set_title(series.title, fontsize=10)
    ax.set_xlabel("epoch", fontsize=9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 4, 5, 10]))
    values = [y for _, y in series.points]
    if "loss" in series.title and values and min(values) > 0 and max(values) > 30 * min(values):
        ax.set_yscale("log")  # a loss falling over decades: the late epochs stay readable
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    if series.integer:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
    ax.tick_params(labelsize=8)
    ax.grid(True, color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)


def _mark_growth(ax: Axes, steps: dict[int, str], labelled: bool) -> None:
    """A dashed vertical line at each epoch that grew; `labelled` writes what grew beside it, from
    the top of the panel down (on the parameter panel that corner is empty: the size steps up
    only after the line)."""
    for epoch, label in steps.items():
        ax.axvline(epoch, color=GROWTH_COLOR, linestyle="--", linewidth=1, alpha=0.8)
        if labelled:
            ax.annotate(
                label,
                xy=(epoch, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(-3, -4),
                textcoords="offset points",
                rotation=90,
                ha="right",
                va="top",
                fontsize=6.5,
                color=GROWTH_COLOR,
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            )


def curves_figure(history: list[dict[str, Any]], title: str = "") -> Figure:
    """The report's figure: a 2x2 grid of `curves`, growth steps dashed on every panel and
    labelled on the parameter panel."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 7), dpi=DPI)
    # fixed margins, not a layout engine: the size is fixed, and a constrained layout would
    # double the drawing time (every run draws this figure)
    fig.subplots_adjust(left=0.07, right=0.985, bottom=0.1, top=0.92, hspace=0.32, wspace=0.14)
    steps = growth_steps(history)
    for ax, series in zip(fig.subplots(2, 2).flat, curves(history), strict=True):
        if series.points:
            xs, ys = zip(*series.points, strict=True)
            ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.6, color="#1f77b4")
        else:
            ax.text(0.5, 0.5, "no epochs recorded", transform=ax.transAxes, ha="center", color="#888888")
        _mark_growth(ax, steps, labelled=series.title == "parameters")
        _style(ax, series)
    if title:
        fig.suptitle(title, fontsize=11)
    if steps:
        note = "dashed red lines: growth steps; labels on the parameter panel: what grew, neurons added"
        fig.text(0.5, 0.015, note, ha="center", fontsize=8)
    return fig


def overlay_figure(runs: dict[str, list[dict[str, Any]]]) -> Figure:
    """Several runs' curves on shared axes (`growdsl compare --plot`): quality, training loss and
    parameters against epochs, one colour per run, its growth steps as dashed ticks of that colour."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 4.2), dpi=DPI)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.13, top=0.92, wspace=0.18)
    axes = fig.subplots(1, 3)
    for name, history in runs.items():
        panels = curves(history)[:3]
        color = None
        for ax, series in zip(axes, panels, strict=True):
            if series.points:
                xs, ys = zip(*series.points, strict=True)
                (line,) = ax.plot(xs, ys, linewidth=1.5, label=name, color=color)
                color = line.get_color()
            for epoch in growth_steps(history):
                ax.axvline(epoch, color=color, linestyle="--", linewidth=0.8, alpha=0.5)
    for ax, series in zip(axes, curves(next(iter(runs.values()), []))[:3], strict=True):
        _style(ax, series)
    axes[0].set_title(" / ".join(sorted({quality(h).title for h in runs.values()})), fontsize=10)
    axes[0].legend(fontsize=8)
    return fig


def population_figure(log: list[dict[str, Any]], lineage: list[tuple[int, int]], best: int | None) -> Figure:
    """A population search's picture, from its `search.jsonl` lines and lineage edges: each
    member's validation fitness over the legs (one line a member, the best in bold) and the
    lineage tree (a member at the leg it was born, an edge from each parent to its child)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), dpi=DPI)
    fig.subplots_adjust(left=0.07, right=0.985, bottom=0.13, top=0.88, wspace=0.18)
    fitness_ax, tree_ax = fig.subplots(1, 2)
    points: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for line in log:
        if line["event"] == "evaluate" and line["fitness"] is not None:
            points[line["member"]].append((line["leg"], line["fitness"]))
    for member, pts in sorted(points.items()):
        xs, ys = zip(*pts, strict=True)
        bold = member == best
        fitness_ax.plot(xs, ys, marker="o", markersize=3, linewidth=2.4 if bold else 0.9,
                        color="#1f77b4" if bold else "#999999", zorder=3 if bold else 2)  # fmt: skip
    fitness_ax.set_title("validation fitness of each member (bold: the best)", fontsize=10)
    fitness_ax.set_xlabel("leg")
    born: dict[int, float] = {}  # a first member at leg 0, a child half-way after its exploit step
    for line in log:
        if line["event"] == "exploit":
            born[line["child"]] = line["leg"] + 0.5
        elif line["event"] == "evaluate":
            born.setdefault(line["member"], 0)
    for parent, child in lineage:
        if parent in born and child in born:
            tree_ax.plot([born[parent], born[child]], [parent, child], color="#999999", linewidth=0.8)
    for member, leg in born.items():
        tree_ax.plot([leg], [member], marker="o", markersize=5 if member == best else 3,
                     color="#1f77b4" if member == best else "#555555")  # fmt: skip
    tree_ax.set_title("lineage: members by the leg they were born, parent to child", fontsize=10)
    tree_ax.set_xlabel("leg")
    tree_ax.set_ylabel("member")
    for ax in (fitness_ax, tree_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def save_png(fig: Figure, path: Path) -> None:
    """PNG at the figure's own size (a tight bounding box would draw it twice)."""
    write_atomically(path, lambda p: fig.savefig(p, format="png"))
