"""Reading the named options of a call (`digits(test: 0.2)`, `sgd(lr: 0.1)`) into Python values.

A spec is data: every value is checked against what its option accepts and turned into a plain
Python value here, with a SpecError at the value's span when it does not fit. Data sets, optimizers
and schedules share this one mechanism, so their messages read alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from growdsl.errors import SpecError
from growdsl.lang.ast import Call, Compare, ListValue, Name, Num, Range, SetValue, Str, Value
from growdsl.lang.suggest import unknown_name_message

Check = Callable[[Value], Any]
"""Turns a spec value into a Python value, or raises SpecError (with `expected`) at its span."""


class BadValue(Exception):
    """Raised by a check with what it expected; `read_options` adds the option's name and span."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _show(value: Value) -> str:
    if isinstance(value, Num):
        return value.text
    if isinstance(value, Str):
        return f'"{value.value}"'
    if isinstance(value, Name):
        return value.id
    if isinstance(value, ListValue):
        return "[" + ", ".join(_show(v) for v in value.items) + "]"
    if isinstance(value, Call):
        return value.name + "(...)" if value.args else value.name
    if isinstance(value, Compare):
        return f"{value.metric} {value.op} {value.bound.text}"
    if isinstance(value, SetValue):
        return "{" + ", ".join(_show(v) for v in value.items) + "}"
    if isinstance(value, Range):
        return f"{_show(value.lo)}..{_show(value.hi)}"
    return type(value).__name__.lower()


def _bounds(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {hi}"
    return ""


def number(
    lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False
) -> Check:
    """A number (int or float) within the given bounds; returned as a float."""
    expected = "a number" + _bounds(lo, hi, lo_open, hi_open)

    def check(value: Value) -> float:
        if not isinstance(value, Num) or not _finite(value.value):
            raise BadValue(expected)
        x = float(value.value)
        if lo is not None and (x < lo or (lo_open and x == lo)):
            raise BadValue(expected)
        if hi is not None and (x > hi or (hi_open and x == hi)):
            raise BadValue(expected)
        return x

    return check


def _finite(x: int | float) -> bool:
    """Finite, and within a float's range (`1e3091G` is an exact int past it)."""
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def integer(lo: int | None = None, hi: int | None = None) -> Check:
    """A whole number within the given bounds (`2k` is fine, `2.5` is not)."""
    expected = "a whole number" + _bounds(lo, hi, False, False)

    def check(value: Value) -> int:
        if not isinstance(value, Num) or not _finite(value.value) or value.value != int(value.value):
            raise BadValue(expected)
        x = int(value.value)
        if (lo is not None and x < lo) or (hi is not None and x > hi):
            raise BadValue(expected)
        return x

    return check


def boolean(value: Value) -> bool:
    """`true` or `false`."""
    if isinstance(value, Name) and value.id in ("true", "false"):
        return value.id == "true"
    raise BadValue("true or false")


def string(value: Value) -> str:
    """A quoted string (paths, column names)."""
    if isinstance(value, Str):
        return value.value
    raise BadValue('a quoted string such as "data/mnist"')


def int_list(length: int, lo: int = 1) -> Check:
    """A list of `length` whole numbers, each at least `lo` (`size: [32, 32]`)."""
    expected = f"a list of {length} whole numbers >= {lo}"

    def check(value: Value) -> list[int]:
        if not isinstance(value, ListValue) or len(value.items) != length:
            raise BadValue(expected)
        try:
            return [integer(lo)(v) for v in value.items]
        except BadValue:
            raise BadValue(expected) from None

    return check


def number_list(length: int, lo: float, hi: float, *, hi_open: bool = False) -> Check:
    """A list of `length` numbers in [lo, hi] (`betas: [0.9, 0.999]`)."""
    inner = number(lo, hi, hi_open=hi_open)
    expected = f"a list of {length} numbers" + _bounds(lo, hi, False, hi_open)

    def check(value: Value) -> list[float]:
        if not isinstance(value, ListValue) or len(value.items) != length:
            raise BadValue(expected)
        try:
            return [inner(v) for v in value.items]
        except BadValue:
            raise BadValue(expected) from None

    return check


def increasing_fractions(value: Value) -> list[float]:
    """A non-empty list of increasing numbers in (0, 1) (`at: [0.5, 0.75]`: points of a run)."""
    expected = "a list of increasing numbers in (0, 1), such as [0.5, 0.75]"
    if not isinstance(value, ListValue) or not value.items:
        raise BadValue(expected)
    try:
        points = [number(0.0, 1.0, lo_open=True, hi_open=True)(v) for v in value.items]
    except BadValue:
        raise BadValue(expected) from None
    if any(a >= b for a, b in zip(points, points[1:], strict=False)):
        raise BadValue(expected)
    return points


@dataclass(frozen=True)
class Option:
    """One named option: its default (None: absent unless given) and its check."""

    default: Any
    check: Check
    doc: str = ""


def read_value(value: Value, check: Check, what: str) -> Any:
    """Apply `check`, turning its BadValue into a SpecError at the value, naming `what`."""
    if isinstance(value, (SetValue, Range)):  # the model's search space, not yet a setting's
        kind = "set" if isinstance(value, SetValue) else "range"
        raise SpecError(
            f"{what} takes one value, not a {kind} {_show(value)}",
            value.span,
            hint="sets and ranges are choices of the model's search space (docs/language.md); "
            "write one value here",
        )
    try:
        return check(value)
    except BadValue as e:
        raise SpecError(f"bad value {_show(value)} for {what}", value.span, expected=e.expected) from None


def read_options(call: Call, options: Mapping[str, Option], what: str) -> dict[str, Any]:
    """The options of `call` as a dict, defaults filled in; `what` names them in messages
    (`data option`, `sgd option`). Positional arguments, unknown names and repeats are errors."""
    given: dict[str, Any] = {}
    for arg in call.args:
        if arg.key is None:
            example = next(iter(options), "name")
            raise SpecError(
                f"{call.name} takes named options only",
                arg.span,
                expected=f"name: value, as in {call.name}({example}: ...)",
            )
        if arg.key not in options:
            raise SpecError(unknown_name_message(what, arg.key, options), arg.span)
        if arg.key in given:
            raise SpecError(f"{what} '{arg.key}' is given twice", arg.span)
        given[arg.key] = read_value(arg.value, options[arg.key].check, f"{what} '{arg.key}'")
    return {name: given.get(name, opt.default) for name, opt in options.items()}
