"""`growdsl payoff --plot FILE`: each arm's test score against its training compute, a point per
seed, the sweep's widths joined by a line through their means (matplotlib's Agg backend, as in
growdsl/run/plots.py)."""

from __future__ import annotations

from pathlib import Path

from growdsl.payoff.measure import Payoff
from growdsl.run.plots import DPI, save_png

COLORS = {"grown": "#d62728", "final_scratch": "#1f77b4", "uniform": "#2ca02c", "start": "#7f7f7f"}


def payoff_figure(result: Payoff):  # noqa: ANN201 - a matplotlib Figure, imported lazily
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), dpi=DPI)
    ax = fig.add_subplot()
    for arm, color in COLORS.items():
        if arm in result.outcomes:
            ax.scatter(
                result.values(arm, "compute"), result.values(arm, result.metric), color=color, label=arm
            )
    if result.sweep:
        means = [
            (
                sum(o.compute for o in outs) / len(outs),
                sum(getattr(o, result.metric) for o in outs) / len(outs),
            )
            for _, outs in result.sweep
        ]
        for _, outs in result.sweep:
            ax.scatter([o.compute for o in outs], [getattr(o, result.metric) for o in outs],
                       color="#ff7f0e", marker="x")  # fmt: skip
        ax.plot(*zip(*means, strict=True), color="#ff7f0e", label="sweep widths (each)")
    ax.set_xscale("log")
    ax.set_xlabel("training compute (FLOPs: 3 x forward x samples)")
    ax.set_ylabel("test accuracy" if result.metric == "test_acc" else "test loss")
    ax.set_title(f"payoff: {Path(result.spec).name}, {len(result.seeds)} seeds")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def save_payoff_plot(result: Payoff, path: Path) -> None:
    save_png(payoff_figure(result), path)
