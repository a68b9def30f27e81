"""The one lark parser for `.grow`, built once from the grammar file shipped in the package."""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path

from lark import Lark

START_SPEC = "start"
START_VALUE = "value_start"


def grammar_text() -> str:
    """The text of `grammars/growdsl.lark`, read from the installed package."""
    return (resources.files("growdsl.grammars") / "growdsl.lark").read_text(encoding="utf-8")


def _cache_file() -> Path | None:
    """Where lark keeps the parser tables between processes: the user's own cache folder (not the
    shared temp folder lark picks by default, as the file is unpickled), or None when it cannot
    be made."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "growdsl"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder / "grammar.lark-cache"


@functools.cache
def lark_parser() -> Lark:
    """LALR with the contextual lexer: fast, and keywords stay usable as names where unambiguous.

    Cached, because building the tables costs more than parsing a typical spec: in the process,
    and across processes in a file (a third of `growdsl check`'s time otherwise, docs/benchmarks.md).
    Lark stores a hash of the grammar, its options and its version in the file and rebuilds the
    tables when they differ, or when the file is damaged or half written by another process
    (tests/lang/test_grammar_cache.py).
    """
    options = dict(
        parser="lalr",
        lexer="contextual",
        start=[START_SPEC, START_VALUE],
        propagate_positions=True,
        maybe_placeholders=False,
    )
    cache = _cache_file()
    return Lark(grammar_text(), cache=str(cache) if cache is not None else False, **options)
