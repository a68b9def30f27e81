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

import itertools
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
    sections = list(_sections([_key(t) for t in code]).values())
    wanted = [
        _wanted_slot(c, to_formatted, fmt_lines, len(lines), _section_around(c.anchor, sections, len(code)))
        for c in comments
    ]
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
    where the formatter dropped it. Sections are paired by their head (`block res`, `train {`),
    since the formatter may reorder them, and aligned one pair at a time."""
    source_keys, formatted_keys = [_key(t) for t in source], [_key(t) for t in formatted]
    if source_keys == formatted_keys:
        return list(range(len(source)))
    mapping: list[int | None] = [None] * len(source)
    formatted_sections = _sections(formatted_keys)
    for head, src_range in _sections(source_keys).items():
        if head in formatted_sections:
            _align_section(source_keys, formatted_keys, src_range, formatted_sections[head], mapping)
    return mapping


def _key(token: Token) -> tuple[str, str]:
    return token.type, token.value


SECTION_KEYWORDS = frozenset({"DATA", "BLOCK", "MODEL", "TRAIN", "GROW", "SEARCH", "EXPORT"})
NAMED_SECTIONS = frozenset({"DATA", "BLOCK", "MODEL", "SEARCH"})  # their keyword, then a name
OPENING, CLOSING = frozenset("([{"), frozenset(")]}")


def _sections(keys: list[tuple[str, str]]) -> dict[tuple[str, str], range]:
    """The token range of each top-level section, by its keyword and the token after it: a
    section starts at a section keyword outside all brackets that is not the name of the
    section before it (`data model`, with the basic lexer's types)."""
    starts, depth = [], 0
    for i, (kind, value) in enumerate(keys):
        if depth == 0 and kind in SECTION_KEYWORDS and not (i and keys[i - 1][0] in NAMED_SECTIONS):
            starts.append(i)
        depth += (value in OPENING) - (value in CLOSING)
    bounds = [*starts, len(keys)]
    return {
        (keys[a][0], keys[a + 1][1] if a + 1 < b else ""): range(a, b) for a, b in itertools.pairwise(bounds)
    }


LOOKAHEAD = 8  # the formatter drops at most `(`, `)` and a trailing `,` in a row
AGREE = 2  # tokens that must agree to take up the alignment again (one `(` is not enough)


def _align_section(
    source: list[tuple[str, str]],
    formatted: list[tuple[str, str]],
    src: range,
    fmt: range,
    mapping: list[int | None],
) -> None:
    """Walk both token runs side by side; where they differ, skip the fewest tokens on either
    side after which they agree again (a dropped `()`, a re-escaped string). Linear in the
    length, unlike a general diff, so a spec of thousands of layers formats at once."""
    i, j = src.start, fmt.start
    while i < src.stop and j < fmt.stop:
        if source[i] == formatted[j]:
            mapping[i] = j
            i, j = i + 1, j + 1
            continue
        skip = _resync(source, formatted, i, j, src.stop, fmt.stop)
        i, j = (i + 1, j) if skip is None else (i + skip[0], j + skip[1])


def _resync(
    source: list[tuple[str, str]],
    formatted: list[tuple[str, str]],
    i: int,
    j: int,
    src_end: int,
    fmt_end: int,
) -> tuple[int, int] | None:
    """The fewest tokens (a, b) to skip in source and formatted text from (i, j) so that the next
    `AGREE` tokens (or all that are left) agree, or None within `LOOKAHEAD`."""
    for total in range(1, 2 * LOOKAHEAD + 1):
        for a in range(min(total, LOOKAHEAD), max(0, total - LOOKAHEAD) - 1, -1):
            x, y = i + a, j + total - a
            if x < src_end and y < fmt_end:
                if source[x : min(x + AGREE, src_end)] == formatted[y : min(y + AGREE, fmt_end)]:
                    return a, total - a
    return None


def _section_around(anchor: int | None, sections: list[range], count: int) -> range:
    """The source section holding a comment's anchor (all tokens when there is none)."""
    if anchor is None:
        return range(count)
    return next((s for s in sections if anchor in s), range(count))


def _wanted_slot(
    comment: Comment, to_formatted: list[int | None], fmt_lines: list[int], n_lines: int, section: range
) -> Slot:
    """Where the comment's anchor now is: above the line of the token after an own-line comment,
    at the end of the line of the token before a trailing one. A dropped anchor (`relu()` prints
    as `relu`) falls back to the nearest token that was kept in the same section (the formatter
    may reorder sections, and a comment must not change section): for an own-line comment the
    next one, else the end of the line of the one before; for a trailing comment the one
    before, else above the next one; with neither, the end of the file."""
    end_of_file = (n_lines, ABOVE)
    if comment.anchor is None:
        return end_of_file
    after = _nearest_kept(to_formatted, comment.anchor, +1, section)
    before = _nearest_kept(to_formatted, comment.anchor, -1, section)
    if before is not None and (not comment.own_line or after is None):
        return fmt_lines[before], AFTER
    return (fmt_lines[after], ABOVE) if after is not None else end_of_file


def _nearest_kept(to_formatted: list[int | None], start: int, step: int, section: range) -> int | None:
    """The formatted index of the first token of `section` from `start` on (or back) that the
    formatter kept."""
    while start in section:
        if to_formatted[start] is not None:
            return to_formatted[start]
        start += step
    return None


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
