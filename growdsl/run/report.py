"""The run report: held-out accuracy (or held-out loss, for regression) and parameter count
against epochs, with growth steps marked, as `report.html` (inline SVG, no scripts, opens
anywhere) and `report.png` (drawn with Pillow, for a quick look or a paper draft).

Both are drawn from the history records alone, so a report can be rebuilt from history.jsonl.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growdsl.export import write_atomically

WIDTH, HEIGHT, PAD = 520, 260, 48


@dataclass(frozen=True)
class Chart:
    title: str
    points: list[tuple[float, float]]  # (epoch, value)
    marks: list[float]  # epochs where the network grew


def charts(history: list[dict[str, Any]]) -> list[Chart]:
    """The two charts of a report: quality (held-out accuracy, else held-out loss) and size
    against epochs."""
    epochs = [r for r in history if r.get("event") == "epoch"]
    marks = [float(r["epoch"]) for r in history if r.get("event") == "grow" and "epoch" in r]
    if any(r.get("acc") is not None for r in epochs):
        points = [(r["epoch"], r["acc"]) for r in epochs if r["acc"] is not None]
        quality = Chart("held-out accuracy", points, marks)
    elif any("held_out_loss" in r for r in epochs):
        points = [(r["epoch"], r["held_out_loss"]) for r in epochs if "held_out_loss" in r]
        quality = Chart("held-out loss", points, marks)
    else:  # a history written before epoch lines carried the held-out loss
        quality = Chart("training loss", [(r["epoch"], r["loss"]) for r in epochs], marks)
    return [quality, Chart("parameters", [(r["epoch"], r["params"]) for r in epochs], marks)]


def _scale(points: list[tuple[float, float]], marks: list[float]):  # noqa: ANN202 - a mapping function
    xs = [x for x, _ in points] + marks or [0.0]
    ys = [y for _, y in points] or [0.0]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    x1 = x1 if x1 > x0 else x0 + 1
    y1, y0 = (y1, y0) if y1 > y0 else (y0 + 1, y0 - 1 if y0 else 0)

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (
            PAD + (x - x0) / (x1 - x0) * (WIDTH - 2 * PAD),
            HEIGHT - PAD - (y - y0) / (y1 - y0) * (HEIGHT - 2 * PAD),
        )

    return to_px, (x0, x1, y0, y1)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def svg(chart: Chart) -> str:
    to_px, (x0, x1, y0, y1) = _scale(chart.points, chart.marks)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="13">{html.escape(chart.title)}</text>',
        f'<rect x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 2 * PAD}" '
        'fill="none" stroke="#999"/>',
        f'<text x="{PAD - 4}" y="{HEIGHT - PAD}" text-anchor="end">{_fmt(y0)}</text>',
        f'<text x="{PAD - 4}" y="{PAD + 8}" text-anchor="end">{_fmt(y1)}</text>',
        f'<text x="{PAD}" y="{HEIGHT - PAD + 14}" text-anchor="middle">{_fmt(x0)}</text>',
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 14}" text-anchor="middle">{_fmt(x1)}</text>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" text-anchor="middle">epoch</text>',
    ]
    for m in chart.marks:
        x, _ = to_px(m, y0)
        parts.append(
            f'<line x1="{x:.1f}" y1="{PAD}" x2="{x:.1f}" y2="{HEIGHT - PAD}" stroke="#d62728" '
            'stroke-dasharray="4 3"><title>growth step</title></line>'
        )
    if chart.points:
        coords = " ".join("{:.1f},{:.1f}".format(*to_px(x, y)) for x, y in chart.points)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
        for x, y in chart.points:
            px, py = to_px(x, y)
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="#1f77b4"><title>epoch {x:g}: '
                f"{_fmt(y)}</title></circle>"
            )
    parts.append("</svg>")
    return "\n".join(parts)


def report_html(title: str, history: list[dict[str, Any]], final_metrics: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in final_metrics.items()
    )
    figures = "\n".join(f"<figure>{svg(c)}</figure>" for c in charts(history))
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}figure{display:inline-block;margin:0 1em 1em 0}"
        "th{text-align:left;padding-right:1em}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table>{rows}</table>\n{figures}\n"
        "<p>Dashed red lines mark growth steps.</p></body></html>\n"
    )


def report_png(history: list[dict[str, Any]], path: Path) -> None:
    """The same charts side by side, drawn with Pillow."""
    from PIL import Image, ImageDraw

    panels = charts(history)
    image = Image.new("RGB", (WIDTH * len(panels), HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    for i, chart in enumerate(panels):
        dx = i * WIDTH
        to_px, (x0, x1, y0, y1) = _scale(chart.points, chart.marks)
        draw.text((dx + WIDTH / 2 - 3 * len(chart.title), 8), chart.title, fill="black")
        draw.rectangle((dx + PAD, PAD, dx + WIDTH - PAD, HEIGHT - PAD), outline="#999999")
        draw.text((dx + 4, HEIGHT - PAD - 6), _fmt(y0), fill="black")
        draw.text((dx + 4, PAD - 6), _fmt(y1), fill="black")
        draw.text((dx + PAD, HEIGHT - PAD + 4), _fmt(x0), fill="black")
        draw.text((dx + WIDTH - PAD - 12, HEIGHT - PAD + 4), _fmt(x1), fill="black")
        draw.text((dx + WIDTH / 2 - 15, HEIGHT - 18), "epoch", fill="black")
        for m in chart.marks:
            x, _ = to_px(m, y0)
            draw.line((dx + x, PAD, dx + x, HEIGHT - PAD), fill="#d62728", width=1)
        pts = [(dx + px, py) for px, py in (to_px(x, y) for x, y in chart.points)]
        if len(pts) > 1:
            draw.line(pts, fill="#1f77b4", width=2)
        for px, py in pts:
            draw.ellipse((px - 2.5, py - 2.5, px + 2.5, py + 2.5), fill="#1f77b4")
    write_atomically(path, lambda p: image.save(p, format="PNG"))


def write_report(
    run_dir: Path, title: str, history: list[dict[str, Any]], final_metrics: dict[str, Any]
) -> None:
    """Write report.html and report.png into the run directory."""
    text = report_html(title, history, final_metrics)
    write_atomically(run_dir / "report.html", lambda p: p.write_text(text))
    report_png(history, run_dir / "report.png")
