"""`growdsl compare DIR...`: several runs side by side, from their run directories' files alone.

A row per run: epochs, final accuracy (the test accuracy from `metrics.json`; a run without it,
stopped early, gets its last held-out accuracy, marked `*`), test loss, params and FLOPs at the
end, growth steps (epochs in which the net grew: a transform's `grow` or the path-level
controller's `pathlevel` edits) and training time (the sum of the epochs' `time`, so time spent
loading data or writing the report is not counted), and a note when the run did not end as a
plain run does. A diverged run is a row with what it kept (`diverged in epoch 3`). A search is
the row of its result, the fittest member, with the search's own time (its legs' or episodes'
wall time, every member's training in it) and a note naming the member; a search without a
result (stopped, or every member crashed or diverged) is a row that says so. `--plot FILE`
overlays their curves (`growdsl.run.plots.overlay_figure`).
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
from growdsl.search.driver import is_search_dir
from growdsl.search.folder import read_search_log


@dataclass(frozen=True)
class RunSummary:
    name: str
    history: list[dict[str, Any]]
    epochs: int | None
    accuracy: float | None
    accuracy_is_final: bool  # the test accuracy at the end (False: last held-out accuracy)
    test_loss: float | None
    params: int | None
    flops: int | None
    growth_steps: int | None
    seconds: float | None
    note: str = ""  # how the run ended, when not as a plain run does: diverged, a search's result


# the edits that grew a net while it trained: a transform's, or the path-level controller's
GROWTH_EVENTS = ("grow", "pathlevel")


def summarize(run_dir: Path, name: str) -> RunSummary:
    """One run's row (a search's: its result's, with the search's own time); a folder that holds
    neither a run's history nor a search is a RunError naming it."""
    history = read_history(run_dir)
    search = read_search_log(run_dir) if is_search_dir(run_dir) else None
    epochs = epoch_records(history)
    diverged = next((r for r in history if r["event"] == "diverged"), None)
    if search is not None and search.best is None:
        no_result = dict.fromkeys(("epochs", "accuracy", "test_loss", "params", "flops", "growth_steps"))
        return RunSummary(name, history, **no_result, accuracy_is_final=True, seconds=search.seconds,
                          note=search.ending)  # fmt: skip
    if not epochs and diverged is None:
        raise RunError(f"{run_dir} holds no {HISTORY} with epoch lines: is it a run directory?")
    metrics = final_metrics_of(run_dir, history)
    last = epochs[-1] if epochs else {"epoch": diverged.get("kept_epoch", 0), **metrics}
    # metrics.json of this very run: a folder reused with --force may hold an older run's
    final = (run_dir / METRICS).is_file() and "test_acc" in metrics and metrics.get("epochs") == last["epoch"]
    note = search.ending if search is not None else ""
    if diverged is not None:
        note = f"diverged in epoch {diverged['epoch']}"
    return RunSummary(
        name=name,
        history=history,
        epochs=last["epoch"],
        accuracy=metrics.get("test_acc") if final else last.get("acc"),
        accuracy_is_final=final,
        test_loss=metrics.get("test_loss"),
        params=last.get("params"),
        flops=last.get("flops", 0),
        growth_steps=len({r["epoch"] for r in history if r["event"] in GROWTH_EVENTS}),
        seconds=search.seconds if search is not None else sum(r.get("time") or 0.0 for r in epochs),
        note=note,
    )


def _names(run_dirs: list[Path]) -> list[str]:
    """Each run's folder name, or the path as given where two runs share a folder name."""
    names = [d.resolve().name for d in run_dirs]
    return [n if names.count(n) == 1 else str(d) for n, d in zip(names, run_dirs, strict=True)]


def compare_table(summaries: list[RunSummary]) -> str:
    """The runs as an aligned text table (right-aligned numbers), with a footnote for `*`."""
    header = ["run", "epochs", "accuracy", "test loss", "params", "FLOPs", "growth steps", "time s", "note"]
    rows = [
        [
            s.name,
            fmt_number(s.epochs),
            fmt_number(s.accuracy) + ("" if s.accuracy_is_final or s.accuracy is None else "*"),
            fmt_number(s.test_loss),
            fmt_number(s.params),
            fmt_number(s.flops),
            fmt_number(s.growth_steps),
            "-" if s.seconds is None else f"{s.seconds:.1f}",
            s.note,
        ]
        for s in summaries
    ]
    if not any(s.note for s in summaries):
        header, rows = header[:-1], [row[:-1] for row in rows]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if header[i] in ("run", "note") else cell.rjust(w)
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
