"""`growdsl check --format json`: the diagnostics as data for editors, exit codes as in text mode."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from growdsl.cli import main


def _check_json(path) -> tuple[int, list[dict]]:
    result = CliRunner().invoke(main, ["check", str(path), "--format", "json"])
    return result.exit_code, json.loads(result.stdout)


def test_a_spec_error_is_one_diagnostic_with_its_place_and_exit_code_2(tmp_path):
    spec = tmp_path / "bad.grow"
    spec.write_text("model m {\n  lineer(8) relu\n}\n")
    code, diagnostics = _check_json(spec)
    assert code == 2
    assert diagnostics == [
        {"file": str(spec), "line": 2, "col": 3, "end_line": 2, "end_col": 12, "severity": "error",
         "message": "unknown op 'lineer': did you mean 'linear'?", "expected": None, "hint": None}
    ]  # fmt: skip


def test_expected_and_hint_are_fields_of_their_own(tmp_path):
    spec = tmp_path / "bad.grow"
    spec.write_text("data mnist(test: 0.3)\nmodel m { flatten linear(classes) }\n")
    code, [diagnostic] = _check_json(spec)
    assert code == 2 and (diagnostic["line"], diagnostic["col"]) == (1, 12)
    assert "own test split" in diagnostic["message"] and diagnostic["hint"].startswith("use val")


def test_an_error_without_a_place_in_the_spec_names_the_file_without_a_line(tmp_path):
    spec = tmp_path / "csv.grow"
    spec.write_text('data csv(path: "nowhere.csv")\nmodel m { linear(classes) }\n')
    code, [diagnostic] = _check_json(spec)
    assert code == 2 and diagnostic["file"] == str(spec) and diagnostic["line"] is None
    assert "nowhere.csv" in diagnostic["message"]


def test_a_good_spec_gives_an_empty_list_and_exit_code_0():
    assert _check_json(Path(__file__).parents[2] / "specs" / "quickstart.grow") == (0, [])
