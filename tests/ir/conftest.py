"""Graphs lowered from real `.grow` text: the parser, then `lower` with a given data binding."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from growdsl.ir import ArchGraph, lower
from growdsl.lang import parse_text


def _lower_text(
    text: str, input_shape: tuple[int, ...] | None = (1, 8, 8), classes: int | None = 10
) -> ArchGraph:
    return lower(parse_text(text, "t.grow"), input_shape, classes)


@pytest.fixture
def lower_text() -> Callable[..., ArchGraph]:
    """`lower_text(text, input_shape=(1, 8, 8), classes=10)`: the digits binding by default."""
    return _lower_text
