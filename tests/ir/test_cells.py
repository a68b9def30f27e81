"""Shared cells are drawn once: `growdsl show` prints a block's tree at its first use and a line
per other use that names it; the report's picture draws one tree and boxes that point to it; a
use changed alone (`shared: false`) is drawn with its own tree; DOT labels name the cell."""

from __future__ import annotations

from click.testing import CliRunner

from growdsl.cli import main
from growdsl.grow.pathlevel.sites import replicate_add
from growdsl.ir import apply_edit, lower, to_dot
from growdsl.ir.cells import block_uses, repeated_uses
from growdsl.lang import parse_text
from growdsl.run.architecture import tree_figure, tree_layout

SPEC = """\
block cell(c) { conv(c) bn relu branch add { conv(c, k: 1) bn | identity } }
model m { conv(4) bn relu cell(4) as a maxpool cell(4) as b cell(6) as c gap flatten linear(3) }
"""


def _graph():
    return lower(parse_text(SPEC, "cells.grow"), (1, 8, 8), 3)


def test_later_uses_with_the_same_tree_repeat_the_first():
    graph = _graph()
    assert block_uses(graph, "cell") == ["m.a", "m.b", "m.c"]
    assert repeated_uses(graph) == {"m.b": "m.a", "m.c": "m.a"}  # widths may differ
    changed, _ = apply_edit(graph, replicate_add(graph, "m.b.0"))  # one use alone
    assert repeated_uses(changed) == {"m.c": "m.a"}


def test_show_prints_a_shared_cell_once_with_its_uses(tmp_path):
    spec = tmp_path / "cells.grow"
    spec.write_text("data digits(test: 0.2)\n" + SPEC.replace("linear(3)", "linear(classes)"))
    result = CliRunner().invoke(main, ["show", str(spec)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    first = next(line for line in lines if "── m.a  " in line)
    assert "cell cell, 3 uses: m.a, m.b, m.c" in first
    for use in ("m.b", "m.c"):
        line = next(line for line in lines if f"── {use}  " in line)
        assert "cell cell, same tree as m.a" in line and "params" in line  # its own shapes and costs
        assert not any(f"{use}.0 " in line for line in lines)  # its tree is not printed again
    assert any("m.a.3.0.0 " in line for line in lines)


def test_the_report_picture_draws_the_cell_once_and_a_changed_use_in_full():
    graph = _graph()
    repeats = repeated_uses(graph)
    where = tree_layout(graph, repeats)
    assert "m.a.0" in where and "m.b" in where and "m.b.0" not in where and "m.c.0" not in where
    texts = [t.get_text().replace("\n", " ") for t in tree_figure(graph).axes[0].texts]
    assert sum("same tree as" in t for t in texts) == 2 and sum("3 uses" in t for t in texts) == 1
    changed, _ = apply_edit(graph, replicate_add(graph, "m.b.0"))
    texts = [t.get_text().replace("\n", " ") for t in tree_figure(changed).axes[0].texts]
    assert sum("same tree as" in t for t in texts) == 1 and sum("of its own" in t for t in texts) == 1
    assert sum(t.startswith("branch mean") for t in texts) == 1  # m.b's new branch is drawn


def test_dot_labels_name_the_cell_and_keep_every_node():
    graph = _graph()
    text = to_dot(graph)
    assert "cell cell, 3 uses" in text and text.count("same tree as m.a") == 2
    assert '"m.b.0"' in text
