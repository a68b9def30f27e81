"""PBT-NAS's exploit step as pure decisions over fitness values (docs/methods/pbt_nas.md).

Every `every` epochs the members are ranked by fitness (held-out accuracy on the validation
split; minus the held-out loss for a regression set; a crashed or diverged member ranks last);
the bottom `replace` share, and every member that crashed or diverged, is replaced by children.
With `mode: mix` a child has two distinct parents drawn from the top share (at least two members,
none of them replaced or crashed), the fitter one parent 1; with `mode: mutate` one parent drawn
from the top share. What a child inherits is decided in
`inherit.py`; this module only chooses who.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Replacement:
    """Member `loser` is replaced by a child of `parent1` (and `parent2` when mixing)."""

    loser: int
    parent1: int
    parent2: int | None


def fitness_of(metrics: dict[str, Any] | None) -> float:
    """A member's fitness from its last epoch line: held-out accuracy, or minus the held-out
    loss for a regression set; -inf for a member that crashed or diverged."""
    if not metrics:
        return -math.inf
    value = metrics["acc"] if metrics.get("acc") is not None else -metrics.get("held_out_loss", math.inf)
    return value if value is not None and math.isfinite(value) else -math.inf


def rank(fitness: dict[int, float]) -> list[int]:
    """Member ids, fittest first; ties go to the older member (the smaller id)."""
    return sorted(fitness, key=lambda m: (-fitness[m], m))


def plan_exploit(
    fitness: dict[int, float], replace: float, mode: str, rng: random.Random
) -> list[Replacement]:
    """Who is replaced, and by a child of whom (see the module docstring). A member that crashed
    or diverged is replaced whether or not it is in the bottom share; parents are drawn from the
    members that did not (when only one did, its children are copies of it)."""
    ranked = rank(fitness)
    count = max(1, math.floor(len(ranked) * replace))
    alive = [m for m in ranked if math.isfinite(fitness[m])]
    losers = ranked[-count:] + [m for m in ranked[:-count] if not math.isfinite(fitness[m])]
    top = [m for m in alive if m not in losers][: max(count, 2) if mode == "mix" else count]
    if not top:  # nobody left to learn from: the losers train on as they are
        return []
    plan = []
    for loser in sorted(losers, key=ranked.index):
        if mode == "mix" and len(top) >= 2:
            a, b = rng.sample(top, 2)
            first, second = sorted((a, b), key=ranked.index)
            plan.append(Replacement(loser, first, second))
        else:
            plan.append(Replacement(loser, rng.choice(top), None))
    return plan
