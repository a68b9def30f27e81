"""The report: charts of accuracy (or loss) and size against epochs, growth steps marked."""

from __future__ import annotations

from PIL import Image

from growdsl.run.report import charts, report_html, write_report

HISTORY = [
    {"event": "epoch", "epoch": 1, "loss": 1.0, "acc": 0.5, "params": 100, "flops": 200, "time": 0.1},
    {"event": "epoch", "epoch": 2, "loss": 0.5, "acc": 0.7, "params": 100, "flops": 200, "time": 0.1},
    {"event": "grow", "epoch": 2, "node": "m.hidden", "params": 180},
    {"event": "epoch", "epoch": 3, "loss": 0.3, "acc": 0.9, "params": 180, "flops": 360, "time": 0.1},
]


def test_charts_plot_accuracy_and_params_with_growth_marked():
    quality, size = charts(HISTORY)
    assert quality.title == "held-out accuracy" and quality.points == [(1, 0.5), (2, 0.7), (3, 0.9)]
    assert size.points == [(1, 100), (2, 100), (3, 180)]
    assert quality.marks == size.marks == [2.0]


def test_regression_history_plots_held_out_loss_instead_of_accuracy():
    history = [{**r, "acc": None, "held_out_loss": r["loss"] + 0.1} for r in HISTORY if r["event"] == "epoch"]
    quality = charts(history)[0]
    assert quality.title == "held-out loss" and quality.points == [(1, 1.1), (2, 0.6), (3, 0.4)]


def test_a_history_without_held_out_loss_plots_training_loss():
    history = [{**r, "acc": None} for r in HISTORY if r["event"] == "epoch"]
    assert charts(history)[0].title == "training loss"


def test_html_report_is_self_contained_with_one_svg_per_chart():
    text = report_html("run <x>", HISTORY, {"test_acc": 0.9})
    assert (
        text.count("<svg") == 2
        and "<script" not in text
        and "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert "run &lt;x&gt;" in text and "growth step" in text and "0.9" in text


def test_write_report_writes_html_and_a_png(tmp_path):
    write_report(tmp_path, "t", HISTORY, {})
    assert (tmp_path / "report.html").read_text().startswith("<!doctype html>")
    with Image.open(tmp_path / "report.png") as image:
        assert image.format == "PNG" and image.size[0] > image.size[1] > 100


def test_empty_history_still_gives_a_report(tmp_path):
    write_report(tmp_path, "t", [], {})
    assert (tmp_path / "report.png").is_file()
