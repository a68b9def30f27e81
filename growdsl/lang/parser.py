"""`.grow` text to `Spec`: the front door of growdsl.lang.

Parsing is two steps with one lark parser: the grammar builds a tree (LALR, contextual lexer),
and `SpecBuilder` turns it into frozen dataclasses at once. Every failure is one `SpecError`.
"""

from __future__ import annotations

import gc
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

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
    """Parse a whole spec; `file` names it in error messages and spans. A leading byte-order mark
    (which some editors write at the start of a UTF-8 file) is not part of the spec."""
    return _parse(text.removeprefix("\ufeff"), file, START_SPEC)  # type: ignore[return-value]


def parse_value(text: str, file: str = "<value>") -> ast.Value:
    """Parse one value (`0.1`, `[1, 2]`, `sgd(lr: 0.1)`), as `--set key=value` needs."""
    return _parse(text, file, START_VALUE)  # type: ignore[return-value]


def load(path: str | os.PathLike[str]) -> ast.Spec:
    """Read and parse a `.grow` file; a file that cannot be read is a `SpecError`, too."""
    return parse_text(read_spec_file(path), str(path))


MAX_SPEC_BYTES = 1_000_000
"""A spec file's size limit (docs/language.md): a hand-written spec is a few kilobytes, a
generated one of 20,000 layers about 400 KB; past the limit a file is almost surely not a spec
(a log, a dataset, `/dev/zero`), and reading and parsing it would take minutes and gigabytes."""


def read_spec_file(path: str | os.PathLike[str]) -> str:
    """The text of a spec file: a regular file (not a folder, pipe or device, which could block
    or never end) of at most MAX_SPEC_BYTES, UTF-8, without the byte-order mark some editors write
    first, its line ends read as `\\n` as Python's text mode reads them."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise SpecError(f"no such spec file: {path}") from None
    except OSError as err:
        raise SpecError(f"cannot read spec file {path}: {err.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a device, pipe or socket)"
        raise SpecError(f"cannot read spec file {path}: it is {kind}; a spec is a .grow text file")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_SPEC_BYTES + 1)  # never more, even if the file grows while read
        except OSError as err:
            raise SpecError(f"cannot read spec file {path}: {err.strerror}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(
            f"spec file {path} is larger than the limit of {MAX_SPEC_BYTES:,} bytes (1 MB)",
            hint="a spec that large is usually not a spec; generated models fit in a few hundred KB",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(
            f"cannot read spec file {path}: it is not UTF-8 text ({err.reason} at byte {err.start})"
        ) from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
