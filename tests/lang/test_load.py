"""`load` reads a file into a `Spec`; a file it cannot read is a `SpecError`, not a traceback."""

from __future__ import annotations

import pytest

from growdsl.errors import SpecError
from growdsl.lang import load
from growdsl.lang.grammar import grammar_text, lark_parser


def test_load_names_spans_after_the_file(tmp_path):
    path = tmp_path / "net.grow"
    path.write_text("model net {\n    flatten linear(classes)\n}\n", encoding="utf-8")
    spec = load(path)
    assert spec.file == str(path)
    assert spec.model.body.terms[0].span.file == str(path)


def test_a_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="no such spec file"):
        load(tmp_path / "missing.grow")


def test_a_directory_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="cannot read spec file"):
        load(tmp_path)


def test_a_file_that_is_not_utf8_is_a_spec_error(tmp_path):
    path = tmp_path / "latin1.grow"
    path.write_bytes(b"model m { relu } # caf\xe9\n")
    with pytest.raises(SpecError, match="cannot read spec file"):
        load(path)


def test_errors_in_a_loaded_file_quote_its_line(tmp_path):
    path = tmp_path / "bad.grow"
    path.write_text("model net {\n    linear(8..4)\n}\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load(path)
    assert "    linear(8..4)" in info.value.render()


def test_the_grammar_ships_in_the_package_and_the_parser_is_built_once():
    assert "start:" in grammar_text()
    assert lark_parser() is lark_parser()
