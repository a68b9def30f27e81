"""`load` reads a file into a `Spec`; a file it cannot read is a `SpecError`, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from growdsl import api
from growdsl.errors import SpecError
from growdsl.lang import MAX_SPEC_BYTES, load, parse_text
from growdsl.lang.grammar import grammar_text, lark_parser

ROOT = Path(__file__).resolve().parents[2]


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


SPEC = "data digits\nmodel m { flatten linear(classes) }\n"
HOSTILE = """
import os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a regression fails here, not the machine
from growdsl.errors import SpecError
from growdsl.lang import load
os.mkfifo(sys.argv[1])  # no writer ever opens it: reading it would wait forever
for path in ("/dev/zero", sys.argv[1], "/dev/stdin"):
    try:
        load(path)
    except SpecError as e:
        print(e)
"""


def test_a_device_or_pipe_is_refused_at_once_without_reading_it(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", HOSTILE, str(tmp_path / "fifo")],
        cwd=ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.PIPE,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all("it is not a regular file" in line for line in lines), result.stdout


def test_a_spec_over_the_size_limit_is_refused_with_the_limit_in_the_message(tmp_path):
    path = tmp_path / "big.grow"
    path.write_text(SPEC + "#" * (MAX_SPEC_BYTES - len(SPEC)))
    load(path)  # at the limit: a spec
    path.write_text(SPEC + "#" * (MAX_SPEC_BYTES - len(SPEC) + 1))
    with pytest.raises(SpecError, match="larger than the limit of 1,000,000 bytes"):
        load(path)


def test_a_utf8_byte_order_mark_is_accepted_and_not_part_of_the_spec(tmp_path):
    path = tmp_path / "bom.grow"
    path.write_bytes(b"\xef\xbb\xbf# from an editor that writes a BOM\r\n" + SPEC.encode())
    assert load(path) == parse_text(SPEC)
    text, _ = api.format_file(path)
    assert text.startswith("# from an editor")
    with pytest.raises(SpecError) as err:  # spans count from the first character after the mark
        api.check_file(_write(tmp_path / "bad.grow", b"\xef\xbb\xbfdata digits\nmodel m { lineer(3) }\n"))
    assert (err.value.span.line, err.value.span.col) == (2, 11)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path
