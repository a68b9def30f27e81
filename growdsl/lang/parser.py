"""`.grow` text to `Spec`: the front door of growdsl.lang.

Parsing is two steps with one lark parser: the grammar builds a tree (LALR, contextual lexer),
and `SpecBuilder` turns it into frozen dataclasses at once. Every failure is one `SpecError`.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lark.exceptions import UnexpectedInput, VisitError

from growdsl.errors import GrowDSLError, SpecError, register_source
from growdsl.lang import ast
from growdsl.lang.build import SpecBuilder
from growdsl.lang.grammar import START_SPEC, START_VALUE, lark_parser
from growdsl.lang.syntax_errors import syntax_error


@contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """A large spec allocates a tree of many small objects that all live until the end; the
    cyclic collector would rescan them again and again (it roughly doubles the time of a
    10,000-layer spec) and can free none of them, so it waits until the parse is done."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse(text: str, file: str, start: str) -> object:
    register_source(file, text)
    parser = lark_parser()
    with _no_gc_pauses():
        try:
            tree = parser.parse(text, start=start)
            return SpecBuilder(file).transform(tree)
        except UnexpectedInput as err:
            raise syntax_error(err, parser, text, file) from None
        except VisitError as err:
            if isinstance(err.orig_exc, GrowDSLError):
                raise err.orig_exc from None
            if isinstance(err.orig_exc, RecursionError):
                raise _too_deep(file) from None
            raise
        except RecursionError:
            raise _too_deep(file) from None


def _too_deep(file: str) -> SpecError:
    return SpecError(
        f"{file}: the spec nests too deeply to parse (hundreds of levels of {{ }} or calls)",
        hint="flatten the nesting, or use `repeat N { ... }` for many copies",
    )


def parse_text(text: str, file: str = "<string>") -> ast.Spec:
    """Parse a whole spec; `file` names it in error messages and spans."""
    return _parse(text, file, START_SPEC)  # type: ignore[return-value]


def parse_value(text: str, file: str = "<value>") -> ast.Value:
    """Parse one value (`0.1`, `[1, 2]`, `sgd(lr: 0.1)`), as `--set key=value` needs."""
    return _parse(text, file, START_VALUE)  # type: ignore[return-value]


def load(path: str | os.PathLike[str]) -> ast.Spec:
    """Read and parse a `.grow` file; a file that cannot be read is a `SpecError`, too."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"no such spec file: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"cannot read spec file {path}: {err}") from None
    return parse_text(text, str(path))
