"""The run report: `report.png` (held-out accuracy, or held-out loss for a regression run, training
loss, parameters and FLOPs against epochs, growth steps as labelled dashed lines),
`architecture.png` (the final tree), `metrics.json` (the final metrics) and `report.html`, which
embeds both pictures (no scripts, no links: it opens anywhere, offline) with the final metrics
and the growth steps as tables of rounded numbers.

Everything is drawn from the history records, the final metrics and the graph, so
`growdsl report DIR` rebuilds a report from `history.jsonl`, `metrics.json` and `graph.json`.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from growdsl import strict_json
from growdsl.errors import RunError
from growdsl.export import write_atomically
from growdsl.ir import ArchGraph
from growdsl.run.architecture import write_architecture_png
from growdsl.run.plots import curves, curves_figure, epoch_records, growth_steps, save_png
from growdsl.run.records import read_graph, read_history, read_metrics

REPORT_PNG, ARCHITECTURE_PNG, METRICS = "report.png", "architecture.png", "metrics.json"


def fmt_number(value: Any) -> str:
    """A number as a person reads it: integers with thousands separators, floats to 4 significant
    digits (`0.9694`, `1.48`, `2.3e-05`), lists item by item."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e5 else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_number(v) for v in value)
    return str(value)


def _table(rows: list[list[Any]], header: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header) if header else ""
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt_number(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def _growth_rows(history: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [r["epoch"], r.get("transform", ""), r.get("node", ""), r.get("params_before"), r.get("params_after"),
         r.get("score")]
        for r in history
        if r.get("event") == "grow"
    ]  # fmt: skip


def _png_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def report_html(
    title: str, history: list[dict[str, Any]], final_metrics: dict[str, Any], pictures: dict[str, Path]
) -> str:
    """The HTML page: title, final metrics, the pictures (`{caption: png path}`) inline, growth steps."""
    metrics = _table([[k, v] for k, v in final_metrics.items()])
    figures = "\n".join(
        f"<figure>{_png_tag(path, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"
        for caption, path in pictures.items()
    )
    growth = _growth_rows(history)
    steps = (
        "<h2>Growth steps</h2>"
        + _table(growth, ["epoch", "transform", "node", "params before", "params after", "predicted gain"])
        if growth
        else "<p>The network did not grow.</p>"
    )
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}img{max-width:100%}figure{margin:1em 0}"
        "th,td{text-align:left;padding:0.15em 1em 0.15em 0}td{font-variant-numeric:tabular-nums}"
        "</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{metrics}\n{figures}\n{steps}\n</body></html>\n"
    )


def write_report(
    run_dir: Path,
    title: str,
    history: list[dict[str, Any]],
    final_metrics: dict[str, Any],
    graph: ArchGraph | None = None,
    extra: dict[str, Path] | None = None,
) -> None:
    """Write report.png, metrics.json, report.html and, given the final graph, architecture.png;
    `extra` pictures (`{caption: png}`, a search's population plot) go into the HTML too."""
    run_dir = Path(run_dir)
    save_png(curves_figure(history, title), run_dir / REPORT_PNG)
    panels = ", ".join(series.title for series in curves(history))
    pictures = {f"{panels} against epochs (dashed red lines: growth steps)": run_dir / REPORT_PNG}
    if graph is not None:
        how = write_architecture_png(graph, run_dir / ARCHITECTURE_PNG)
        pictures[f"final architecture (drawn by {how})"] = run_dir / ARCHITECTURE_PNG
    pictures.update(extra or {})
    metrics = strict_json.dumps(final_metrics, indent=1) + "\n"
    write_atomically(run_dir / METRICS, lambda p: p.write_text(metrics))
    text = report_html(title, history, final_metrics, pictures)
    write_atomically(run_dir / "report.html", lambda p: p.write_text(text))


def final_metrics_of(run_dir: Path, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's `metrics.json`, or (a run that stopped early, or one written before it existed)
    what the last epoch line says: epochs, held-out accuracy or loss, params, FLOPs."""
    path = run_dir / METRICS
    if path.exists():
        return read_metrics(path)
    last = epoch_records(history)[-1] if epoch_records(history) else {}
    keys = ("epoch", "acc", "held_out_loss", "params", "flops")
    return {
        ("epochs" if k == "epoch" else f"held_out_{k}" if k == "acc" else k): last[k]
        for k in keys
        if k in last
    }


def rebuild_report(run_dir: str | Path) -> list[Path]:
    """`growdsl report DIR`: the report of the run in DIR, from its history (and graph.json when
    there is one); returns the files written."""
    from growdsl.search.driver import is_search_dir  # the search imports this module
    from growdsl.search.folder import read_search_log

    run_dir = Path(run_dir)
    history = read_history(run_dir)
    if is_search_dir(run_dir) and read_search_log(run_dir).best is None:
        ending = read_search_log(run_dir).ending.removeprefix("search: ")
        raise RunError(
            f"{run_dir} is a search without a result to report ({ending}); its log is "
            f"{run_dir / 'search.jsonl'}, its members' histories are in {run_dir / 'members'}"
        )
    if not any(r["event"] in ("epoch", "diverged") for r in history):
        raise RunError(f"{run_dir} holds no history.jsonl with epoch lines: is it a run directory?")
    graph_file = run_dir / "graph.json"
    graph = read_graph(graph_file) if graph_file.exists() else None
    write_report(
        run_dir, f"growdsl run {run_dir.resolve().name}", history, final_metrics_of(run_dir, history), graph
    )
    written = [REPORT_PNG, METRICS, "report.html"] + ([ARCHITECTURE_PNG] if graph is not None else [])
    return [run_dir / name for name in written]


__all__ = ["fmt_number", "growth_steps", "rebuild_report", "report_html", "write_report"]
