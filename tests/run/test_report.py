"""The report: curves of quality, loss and size against epochs with growth steps as labelled dashed
lines, a picture of the final tree, an HTML page with the pictures inline and rounded numbers,
and `growdsl report DIR` rebuilding all of it from the run's files."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from matplotlib.image import imread

from growdsl import api
from growdsl.cli import main
from growdsl.lang import parse_text
from growdsl.run.architecture import tree_layout, write_architecture_png
from growdsl.run.plots import curves, curves_figure, growth_steps
from growdsl.run.report import fmt_number, write_report

HISTORY = [
    {"event": "epoch", "epoch": 1, "loss": 1.0, "acc": 0.5, "params": 100, "flops": 200, "time": 0.1},
    {"event": "epoch", "epoch": 2, "loss": 0.5, "acc": 0.7, "params": 100, "flops": 200, "time": 0.1},
    {"event": "grow", "epoch": 2, "transform": "split", "node": "m.hidden", "params_before": 100,
     "params_after": 150, "score": 1.4804434178599408e-05, "detail": {"added": 5}},
    {"event": "grow", "epoch": 2, "transform": "firefly", "node": "m.3", "params_before": 150,
     "params_after": 180, "score": 0.002},
    {"event": "epoch", "epoch": 3, "loss": 0.3, "acc": 0.9, "params": 180, "flops": 360, "time": 0.1},
]  # fmt: skip
METRICS = {"epochs": 3, "test_loss": 1.4804434178599408, "test_acc": 0.9, "params": 180, "flops": 360}


def test_curves_plot_quality_loss_params_and_flops_against_epochs():
    quality, loss, params, flops = curves(HISTORY)
    assert quality.title == "held-out accuracy" and quality.points == [(1, 0.5), (2, 0.7), (3, 0.9)]
    assert loss.points == [(1, 1.0), (2, 0.5), (3, 0.3)]
    assert params.points == [(1, 100), (2, 100), (3, 180)] and flops.points[-1] == (3, 360)


def test_regression_history_plots_held_out_loss_and_old_histories_training_loss():
    regression = [
        {**r, "acc": None, "held_out_loss": r["loss"] + 0.1} for r in HISTORY if r["event"] == "epoch"
    ]
    assert curves(regression)[0].title == "held-out loss"
    assert curves(regression)[0].points == [(1, 1.1), (2, 0.6), (3, 0.4)]
    old = [{**r, "acc": None} for r in HISTORY if r["event"] == "epoch"]
    assert curves(old)[0].title == "training loss"


def test_each_epoch_that_grew_gets_one_label_saying_what_grew():
    assert growth_steps(HISTORY) == {2: "split hidden +5; firefly 3 +30p"}


def test_growth_steps_are_dashed_vertical_lines_on_every_panel_labelled_on_the_parameter_panel():
    fig = curves_figure(HISTORY)
    for ax in fig.axes:
        dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
        assert [list(line.get_xdata()) for line in dashed] == [[2, 2]]
        assert len(ax.get_xticks()) >= 3 and len(ax.get_yticks()) >= 3  # readable axes, not end values
    labels = {ax.get_title(): [t.get_text() for t in ax.texts] for ax in fig.axes}
    assert labels["parameters"] == ["split hidden +5; firefly 3 +30p"]
    assert labels["held-out accuracy"] == []


def test_numbers_are_rounded_for_people():
    assert fmt_number(1.4804434178599408) == "1.48"
    assert fmt_number(0.969359) == "0.9694" and fmt_number(4965) == "4,965"
    assert fmt_number([0.91234, 0.5]) == "0.9123, 0.5" and fmt_number(None) == "-"


def test_html_report_embeds_its_pictures_and_shows_rounded_numbers(tmp_path):
    write_report(tmp_path, "run <x>", HISTORY, METRICS)
    text = (tmp_path / "report.html").read_text()
    assert text.count('src="data:image/png;base64,') == 1  # no graph given: no tree picture
    text = re.sub(r"base64,[A-Za-z0-9+/=]+", "", text)
    assert "run &lt;x&gt;" in text and "<script" not in text and "http" not in text
    assert "1.48" in text and "1.4804434178599408" not in text and "1.48e-05" in text
    assert re.search(r"<td>2</td><td>split</td><td>m.hidden</td><td>100</td><td>150</td>", text)
    assert json.loads((tmp_path / "metrics.json").read_text()) == METRICS


def test_report_png_is_a_readable_picture(tmp_path):
    write_report(tmp_path, "t", HISTORY, METRICS)
    height, width, _ = imread(tmp_path / "report.png").shape
    assert width > height > 400


def test_empty_history_still_gives_a_report(tmp_path):
    write_report(tmp_path, "t", [], {})
    assert (tmp_path / "report.png").is_file() and (tmp_path / "report.html").is_file()


CNN = """data digits
model cnn { conv(8, k: 3) relu branch add { conv(8, k: 3) relu | identity } gap flatten linear(classes) }"""


def test_tree_layout_centres_parents_over_their_children_and_never_overlaps():
    graph = api.lower(parse_text(CNN, "cnn.grow"))
    where = tree_layout(graph)
    assert set(where) == set(graph.walk())
    for node in graph.walk():
        children = graph.live_children(node)
        if children:
            assert where[node][0] == (where[children[0]][0] + where[children[-1]][0]) / 2
            assert all(where[c][1] == where[node][1] + 1 for c in children)
    rows: dict[int, list[float]] = {}
    for x, depth in where.values():
        rows.setdefault(depth, []).append(x)
    assert all(len(xs) == len(set(xs)) for xs in rows.values())


def test_without_graphviz_the_tree_is_drawn_with_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` program to be found
    graph = api.lower(parse_text(CNN, "cnn.grow"))
    assert write_architecture_png(graph, tmp_path / "tree.png") == "matplotlib"
    height, width, _ = imread(tmp_path / "tree.png").shape
    assert width > height > 100


def test_with_graphviz_the_tree_is_drawn_by_dot(tmp_path):
    import shutil

    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed here")
    graph = api.lower(parse_text(CNN, "cnn.grow"))
    assert write_architecture_png(graph, tmp_path / "tree.png") == "dot"
    assert imread(tmp_path / "tree.png").shape[0] > 100


def test_growdsl_report_rebuilds_the_report_of_a_run_from_its_files(tmp_path):
    spec = parse_text(
        "data spirals(n: 200)\nmodel m { linear(8) relu linear(classes) }\ntrain { epochs 2 }", "m"
    )
    out = tmp_path / "run"
    api.run_spec(spec, out=out, quiet=True)
    assert (out / "architecture.png").is_file()
    for name in ("report.html", "report.png", "architecture.png"):
        (out / name).unlink()
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("report.html", "report.png", "architecture.png", "metrics.json"):
        assert (out / name).is_file() and f"wrote {out / name}" in result.output
    assert "test_acc" in (out / "report.html").read_text()


def test_growdsl_report_of_a_folder_without_a_run_exits_2(tmp_path):
    (tmp_path / "history.jsonl").write_text('{"event": "epoch", "epoch": 1,\n')
    for folder in (tmp_path / "missing", tmp_path):
        result = CliRunner().invoke(main, ["report", str(folder)])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
