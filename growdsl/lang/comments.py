"""Comments kept through `fmt`: the source's comments woven into the canonical text.

The parser ignores comments, so `format_spec` never sees them. Here the source is lexed again with
comments kept, each comment is anchored to a code token (an own-line comment to the token after
it, a trailing comment to the token before it), the source's code tokens are aligned with the
formatted text's (they are nearly the same sequence: `relu()` prints as `relu`, trailing commas go,
sections may move), and each comment is put back at the formatted line that now holds its anchor:
above it, indented like it, or at its end after two spaces.

Comments keep their order within a section (and move with it when the sections are put in canonical
order). Where that order and the anchors disagree (a trailing comment of a line the formatter
joined onto a later one), the later comment moves down to the next free place, so weaving the
woven text again changes nothing: `fmt` stays idempotent with comments.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from lark import Token

from growdsl.lang.grammar import lark_parser

INDENT = "    "
# A place in the output, in output order: (line, ABOVE) is an own line before that line,
# (line, AFTER) the end of that line; (number of lines, ABOVE) is the end of the file.
ABOVE, AFTER = 0, 1
Slot = tuple[int, int]


@dataclass(frozen=True)
class Comment:
    """One source comment: its text (without trailing blanks), whether it stands on a line of its
    own, and the index of its anchor among the source's code tokens (None: no code follows it)."""

    text: str
    own_line: bool
    anchor: int | None


def weave_comments(source: str, formatted: str) -> str:
    """`formatted` (the canonical text of `source`'s spec) with `source`'s comments put back."""
    code, comments = _split_tokens(source)
    if not comments:
        return formatted
    lines = formatted.splitlines()
    fmt_code, _ = _split_tokens(formatted)
    to_formatted = _align(code, fmt_code)
    fmt_lines = [t.line - 1 for t in fmt_code]  # type: ignore[operator]
    wanted = [_wanted_slot(c, to_formatted, fmt_lines, len(lines)) for c in comments]
    section = _section_of_line(lines)
    order = sorted(range(len(comments)), key=lambda i: (section[wanted[i][0]], i))
    placed: dict[Slot, list[str]] = {}
    last: Slot = (0, ABOVE)
    for i in order:
        last = _free_slot(max(wanted[i], last), placed, lines)
        placed.setdefault(last, []).append(comments[i].text)
    return _render(lines, placed)


def _section_of_line(lines: list[str]) -> list[int]:
    """For each line (and the end of the file), the number of the section it is in; sections are
    separated by blank lines, and only they are (`format_spec` leaves no blank line inside one).
    Comments are kept in order within a section, and move with their section when the formatter
    puts the sections in canonical order."""
    numbers, blanks = [], 0
    for line in lines:
        blanks += not line.strip()
        numbers.append(blanks)
    return [*numbers, blanks]


def _split_tokens(text: str) -> tuple[list[Token], list[Comment]]:
    """The code tokens of `text` and its comments, each comment anchored to a code token."""
    code: list[Token] = []
    comments: list[Comment] = []
    pending: list[str] = []  # own-line comments waiting for the next code token
    for token in _lex(text):
        if token.type == "COMMENT":
            text_ = token.value.rstrip()
            if code and code[-1].end_line == token.line:
                comments.append(Comment(text_, own_line=False, anchor=len(code) - 1))
            else:
                pending.append(text_)
            continue
        comments += [Comment(t, own_line=True, anchor=len(code)) for t in pending]
        pending.clear()
        code.append(token)
    comments += [Comment(t, own_line=True, anchor=None) for t in pending]
    return code, comments


def _lex(text: str) -> Iterable[Token]:
    """The tokens of `text`, comments included, whitespace left out. Lark's `lex` uses a basic
    lexer (no parser state), which tells comments, strings and code apart just as well."""
    return (t for t in lark_parser().lex(text, dont_ignore=True) if t.type != "WS")


def _align(source: list[Token], formatted: list[Token]) -> list[int | None]:
    """For each source code token, the index of the same token in the formatted text, or None
    where the formatter dropped it. Matching blocks are found again among the tokens left over,
    so a section the formatter moved (a `data` written after the `model`) still maps."""
    mapping: list[int | None] = [None] * len(source)
    if [_key(t) for t in source] == [_key(t) for t in formatted]:
        return list(range(len(source)))
    src_left, fmt_left = list(range(len(source))), list(range(len(formatted)))
    min_size = 1
    while src_left and fmt_left:
        matcher = difflib.SequenceMatcher(
            None, [_key(source[i]) for i in src_left], [_key(formatted[j]) for j in fmt_left], autojunk=False
        )
        blocks = [b for b in matcher.get_matching_blocks() if b.size >= min_size]
        if not blocks:
            break
        for a, b, size in blocks:
            for k in range(size):
                mapping[src_left[a + k]] = fmt_left[b + k]
        src_left = [i for i in src_left if mapping[i] is None]
        taken = {j for j in mapping if j is not None}
        fmt_left = [j for j in fmt_left if j not in taken]
        min_size = 2  # a lone `(` or `,` left over is one the formatter dropped, not one it moved
    return mapping


def _key(token: Token) -> tuple[str, str]:
    return token.type, token.value


def _wanted_slot(
    comment: Comment, to_formatted: list[int | None], fmt_lines: list[int], n_lines: int
) -> Slot:
    """Where the comment's anchor now is: above the line of the token after an own-line comment,
    at the end of the line of the token before a trailing one. A dropped anchor (`relu()` prints
    as `relu`) falls back to the nearest token that was kept: for an own-line comment the next
    one (or the end of the file), for a trailing comment the one before (or else the next)."""
    end_of_file = (n_lines, ABOVE)
    if comment.anchor is None:
        return end_of_file
    after = [j for j in to_formatted[comment.anchor :] if j is not None]
    before = [j for j in reversed(to_formatted[: comment.anchor + 1]) if j is not None]
    if comment.own_line:
        return (fmt_lines[after[0]], ABOVE) if after else end_of_file
    if before:
        return fmt_lines[before[0]], AFTER
    return (fmt_lines[after[0]], ABOVE) if after else end_of_file


def _free_slot(slot: Slot, placed: dict[Slot, list[str]], lines: list[str]) -> Slot:
    """`slot`, or the next own-line place when it is a line end that already holds a comment
    (a second `#` there would become part of the first comment's text)."""
    line, kind = slot
    if kind == ABOVE or slot not in placed:
        return slot
    line += 1
    while line < len(lines) and not lines[line].strip():
        line += 1
    return line, ABOVE


def _render(lines: list[str], placed: dict[Slot, list[str]]) -> str:
    out: list[str] = []
    for i, line in enumerate(lines):
        indent = line[: len(line) - len(line.lstrip())]
        if line.lstrip().startswith("}"):
            indent += INDENT
        out += [indent + text for text in placed.get((i, ABOVE), [])]
        out.append("  ".join([line, *placed.get((i, AFTER), [])]))
    out += placed.get((len(lines), ABOVE), [])
    return "\n".join(out) + "\n"
