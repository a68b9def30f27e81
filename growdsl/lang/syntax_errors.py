"""Lark's syntax errors, said in words: one `SpecError` with a span, what was expected, and a
did-you-mean hint where a misspelt keyword is the likely cause."""

from __future__ import annotations

import difflib
import re

from lark import Lark
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from growdsl.errors import Span, SpecError
from growdsl.lang.suggest import did_you_mean

KEYWORDS = (
    "model", "block", "data", "train", "grow", "search", "export",
    "branch", "repeat", "choice", "as", "every", "at", "when", "until", "epochs",
)  # fmt: skip

_NAMED = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "CMP": "a comparison (>, <, >= or <=)",
    "$END": "the end of the file",
}

# Sets of terminals that read better as one phrase; the first that fits wins.
_GROUPS = (
    ({"MODEL", "BLOCK", "DATA", "TRAIN", "GROW", "SEARCH", "EXPORT"},
     "a section (model, block, data, train, grow, search or export)"),
    ({"NAME", "LBRACE", "BRANCH", "REPEAT", "CHOICE"},
     "a model term (an op, '{', branch, repeat or choice)"),
    ({"EVERY", "AT", "WHEN", "UNTIL", "NAME"},
     "a grow statement (every, at, when, until or a transform)"),
    ({"NUMBER", "STRING", "NAME", "LSQB", "LBRACE"}, "a value"),
    ({"NUMBER", "STRING", "NAME", "LSQB"}, "a value"),
)  # fmt: skip


def expected_in_words(parser: Lark, expected: set[str]) -> str:
    """`{'NAME', 'RBRACE'}` -> "a name or '}'"."""
    expected = set(expected)
    phrases: list[str] = []
    for members, phrase in _GROUPS:
        if members <= expected:
            phrases.append(phrase)
            expected -= members
    by_name = {t.name: t for t in parser.terminals}
    for name in sorted(expected):
        term = by_name.get(name)
        if name in _NAMED:
            phrases.append(_NAMED[name])
        elif term is not None and isinstance(term.pattern, PatternStr):
            phrases.append(f"'{term.pattern.value}'")
        else:
            phrases.append(name.lower())
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " or " + phrases[-1]


def _keyword_hint(word: str) -> str | None:
    if word in KEYWORDS or len(word) < 4:
        return None
    # Stricter than did_you_mean's cutoff: this guesses from any word nearby, and ops such as
    # `tanh` or settings such as `batch` must not read as misspelt keywords.
    guesses = difflib.get_close_matches(word, [k for k in KEYWORDS if len(k) >= 4], n=1, cutoff=0.75)
    return f"did you mean '{guesses[0]}'?" if guesses else None


def _open_brace_line_start(text: str, pos: int) -> int:
    """Offset of the start of the line holding the innermost `{` still open at `pos`."""
    stack: list[int] = []
    for m in re.finditer(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[{}]', text[:pos]):
        if m[0] == "{":
            stack.append(m.start())
        elif m[0] == "}" and stack:
            stack.pop()
    start = stack[-1] if stack else pos
    return text.rfind("\n", 0, start) + 1


def _misspelt_keyword_before(text: str, pos: int) -> str | None:
    """A near-miss of a keyword between the enclosing block's line and `pos`, nearest first."""
    window = text[_open_brace_line_start(text, pos) : pos]
    window = re.sub(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*', " ", window)
    for word in reversed(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", window)):
        hint = _keyword_hint(word)
        if hint:
            return hint
    return None


def _offset(text: str, line: int, col: int) -> int:
    lines = text.split("\n")
    return sum(len(x) + 1 for x in lines[: line - 1]) + col - 1


def _end_of_text(file: str, text: str) -> Span:
    """Just after the last non-blank character, so the rendered error can quote that line."""
    lines = text.rstrip().split("\n")
    return Span(file, len(lines), len(lines[-1]) + 1)


def _acceptable(err: UnexpectedToken | UnexpectedEOF) -> set[str]:
    # `accepts` (computed by lark's interactive parser) is complete; `expected` can miss keywords.
    return set(getattr(err, "accepts", None) or err.expected)


def syntax_error(err: UnexpectedInput, parser: Lark, text: str, file: str) -> SpecError:
    """The one `SpecError` for lark's `err` at its place in `text`."""
    if isinstance(err, UnexpectedCharacters):
        span = Span(file, err.line, err.column, err.line, err.column + 1)
        char = text[err.pos_in_stream]
        if char == '"':
            return SpecError("unterminated string", span, hint='close it with " on the same line')
        allowed = expected_in_words(parser, err.allowed) if err.allowed else None
        return SpecError(f"unexpected character {char!r}", span, expected=allowed)
    if isinstance(err, UnexpectedEOF) or (isinstance(err, UnexpectedToken) and err.token.type == "$END"):
        expected = expected_in_words(parser, _acceptable(err))
        return SpecError(
            "unexpected end of file",
            _end_of_text(file, text),
            expected=expected,
            hint=_misspelt_keyword_before(text, len(text)),
        )
    assert isinstance(err, UnexpectedToken), err
    tok = err.token
    span = Span(file, tok.line, tok.column, tok.end_line, tok.end_column)
    acceptable = _acceptable(err)
    expected = expected_in_words(parser, acceptable)
    hint = None
    if tok.type == "NAME":
        keywords = [str(n).lower() for n in acceptable if str(n).lower() in KEYWORDS]
        guess = did_you_mean(str(tok), keywords)
        hint = f"did you mean '{guess}'?" if guess else None
    if hint is None:
        hint = _misspelt_keyword_before(text, _offset(text, tok.line, tok.column))
    shown = f"'{tok}'" if tok.type != "STRING" else str(tok)
    return SpecError(f"unexpected {shown}", span, expected=expected, hint=hint)
