"""`growdsl compare DIR...`: several runs side by side, from their run directories' files alone.

A row per run: epochs, final accuracy (the test accuracy from `metrics.json`; a run without it,
stopped early, gets its last held-out accuracy, marked `*`), test loss, params and FLOPs at the
end, growth steps (epochs in which the net grew) and training time (the sum of the epochs'
`time`, so time spent loading data or writing the report is not counted). `--plot FILE` overlays
their curves (`growdsl.run.plots.overlay_figure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growdsl.errors import RunError
from growdsl.run.plots import epoch_records, overlay_figure, save_png
from growdsl.run.records import read_history
from growdsl.run.report import METRICS, final_metrics_of, fmt_number
from growdsl.run.rundir import HISTORY


@dataclass(frozen=True)
class RunSummary:
    name: str
    history: list[dict[str, Any]]
    epochs: int
    accuracy: float | None
    accuracy_is_final: bool  # the test accuracy at the end (False: last held-out accuracy)
    test_loss: float | None
    params: int
    flops: int
    growth_steps: int
    seconds: float


def summarize(run_dir: Path, name: str) -> RunSummary:
    """One run's row; a folder without a history with epoch lines is a RunError naming it."""
    history = read_history(run_dir)
    epochs = epoch_records(history)
    if not epochs:
        raise RunError(f"{run_dir} holds no {HISTORY} with epoch lines: is it a run directory?")
    metrics = final_metrics_of(run_dir, history)
    last = epochs[-1]
    # metrics.json of this very run: a folder reused with --force may hold an older run's
    final = (run_dir / METRICS).is_file() and "test_acc" in metrics and metrics.get("epochs") == last["epoch"]
    return RunSummary(
        name=name,
        history=history,
        epochs=last["epoch"],
        accuracy=metrics.get("test_acc") if final else last.get("acc"),
        accuracy_is_final=final,
        test_loss=metrics.get("test_loss"),
        params=last["params"],
        flops=last.get("flops", 0),
        growth_steps=len({r["epoch"] for r in history if r.get("event") == "grow"}),
        seconds=sum(r.get("time", 0.0) for r in epochs),
    )


def _names(run_dirs: list[Path]) -> list[str]:
    """Each run's folder name, or the path as given where two runs share a folder name."""
    names = [d.resolve().name for d in run_dirs]
    return [n if names.count(n) == 1 else str(d) for n, d in zip(names, run_dirs, strict=True)]


def compare_table(summaries: list[RunSummary]) -> str:
    """The runs as an aligned text table (right-aligned numbers), with a footnote for `*`."""
    header = ["run", "epochs", "accuracy", "test loss", "params", "FLOPs", "growth steps", "time s"]
    rows = [
        [
            s.name,
            fmt_number(s.epochs),
            fmt_number(s.accuracy) + ("" if s.accuracy_is_final or s.accuracy is None else "*"),
            fmt_number(s.test_loss),
            fmt_number(s.params),
            fmt_number(s.flops),
            fmt_number(s.growth_steps),
            f"{s.seconds:.1f}",
        ]
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    if any(not s.accuracy_is_final and s.accuracy is not None for s in summaries):
        lines.append("* no test accuracy recorded (a run that did not finish): its last held-out accuracy")
    return "\n".join(line.rstrip() for line in lines)


def compare(run_dirs: list[Path], plot: Path | None = None) -> str:
    """The table of `run_dirs`; with `plot`, also their curves overlaid as a PNG there."""
    summaries = [summarize(Path(d), n) for d, n in zip(run_dirs, _names(run_dirs), strict=True)]
    if plot is not None:
        save_png(overlay_figure({s.name: s.history for s in summaries}), Path(plot))
    return compare_table(summaries)
