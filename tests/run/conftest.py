"""Shared fixtures for the run tests: a tiny spec that trains in well under a second."""

from __future__ import annotations

import pytest

from growdsl.lang import parse_text
from growdsl.lang.ast import Spec

# dropout, momentum, a schedule and a val split: every piece of state a resume must restore
TINY = """
data spirals(n: 200, val: 0.1)
model tiny { linear(16) relu dropout(0.2) linear(classes) }
train {
    epochs 3
    batch 32
    optimizer sgd(lr: 0.1, momentum: 0.9)
    schedule cosine
    seed 7
    device cpu
}
"""


@pytest.fixture
def tiny_spec(tmp_path) -> Spec:
    """TINY, read from a file (so spec.grow is a copy of it)."""
    path = tmp_path / "tiny.grow"
    path.write_text(TINY)
    return parse_text(TINY, str(path))
