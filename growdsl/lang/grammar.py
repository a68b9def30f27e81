"""The one lark parser for `.grow`, built once from the grammar file shipped in the package."""

from __future__ import annotations

import functools
from importlib import resources

from lark import Lark

START_SPEC = "start"
START_VALUE = "value_start"


def grammar_text() -> str:
    """The text of `grammars/growdsl.lark`, read from the installed package."""
    return (resources.files("growdsl.grammars") / "growdsl.lark").read_text(encoding="utf-8")


@functools.cache
def lark_parser() -> Lark:
    """LALR with the contextual lexer: fast, and keywords stay usable as names where unambiguous.

    Cached, because building the tables costs more than parsing a typical spec.
    """
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        start=[START_SPEC, START_VALUE],
        propagate_positions=True,
        maybe_placeholders=False,
    )
