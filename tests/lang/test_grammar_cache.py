"""lark's parser tables are cached between processes (growdsl/lang/grammar.py): a damaged or
half-written cache file never breaks parsing, and a good one is what the next process loads."""

from __future__ import annotations

import pytest

from growdsl.lang import grammar, parse_text

SPEC = "model m { linear(4) relu linear(2) }"


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    grammar.lark_parser.cache_clear()
    yield tmp_path / "growdsl" / "grammar.lark-cache"
    grammar.lark_parser.cache_clear()  # later tests get a parser built from the user's cache again


def test_the_first_parse_writes_the_cache_the_next_one_uses(cache_home):
    parse_text(SPEC, "m.grow")
    written = cache_home.read_bytes()
    assert written
    grammar.lark_parser.cache_clear()
    assert parse_text(SPEC, "m.grow").model.name == "m" and cache_home.read_bytes() == written


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_cache_file_is_rebuilt_not_an_error(cache_home, damage):
    parse_text(SPEC, "m.grow")
    good = cache_home.read_bytes()
    cache_home.write_bytes(b"not a cache\n" if damage == "garbage" else good[: len(good) // 2])
    grammar.lark_parser.cache_clear()
    assert parse_text(SPEC, "m.grow").model.name == "m"


def test_an_unwritable_cache_folder_only_costs_time(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # a file where the folder would go
    grammar.lark_parser.cache_clear()
    try:
        assert parse_text(SPEC, "m.grow").model.name == "m"
    finally:
        grammar.lark_parser.cache_clear()
