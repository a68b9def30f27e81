"""`where:` constraints of a search: bounds on a member's size that every method honours.

`search random(trials: 20, where: params <= 200k)`; several bounds are a list,
`where: [params <= 200k, flops < 5M]`. The metrics are a member's `params` and forward `flops` a
sample (as `growdsl check` counts them, `growdsl/ir/cost.py`); the comparisons are `<`, `<=`, `>`
and `>=`. A method draws, mixes and mutates until its member satisfies every bound (`satisfied`),
so no member that breaks one is ever trained.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from growdsl.ir.cost import costs
from growdsl.ir.graph import ArchGraph
from growdsl.lang.ast import Compare, ListValue, Value
from growdsl.options import BadValue

METRICS = ("params", "flops")
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
EXPECTED = "a bound such as params <= 200k or flops < 5M, or a list of them (metrics: params, flops)"


@dataclass(frozen=True)
class Constraint:
    """`metric op bound`, as written (`text`) for messages."""

    metric: str
    op: str
    bound: float
    text: str

    def holds(self, value: float) -> bool:
        return _COMPARE[self.op](value, self.bound)


def read_where(value: Value) -> tuple[Constraint, ...]:
    """The option check of `where:` (an `Option` check: raises `BadValue` with what it expects)."""
    items = value.items if isinstance(value, ListValue) else (value,)
    if not items or not all(isinstance(v, Compare) and v.metric in METRICS for v in items):
        raise BadValue(EXPECTED)
    return tuple(
        Constraint(v.metric, v.op, float(v.bound.value), f"{v.metric} {v.op} {v.bound.text}") for v in items
    )


def broken(graph: ArchGraph, constraints: tuple[Constraint, ...]) -> Constraint | None:
    """The first bound `graph` breaks, or None when it satisfies them all."""
    if not constraints:
        return None
    params, flops = costs(graph)[graph.root]
    measured = {"params": params, "flops": flops}
    return next((c for c in constraints if not c.holds(measured[c.metric])), None)


def satisfied(graph: ArchGraph, constraints: tuple[Constraint, ...]) -> bool:
    return broken(graph, constraints) is None


def ceilings(constraints: tuple[Constraint, ...]) -> tuple[Constraint, ...]:
    """The upper bounds (`<`, `<=`): the ones an edit that never makes a net smaller can break
    but never mend again (path-level search masks the edits that would break them)."""
    return tuple(c for c in constraints if c.op in ("<", "<="))
