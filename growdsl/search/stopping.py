"""Early stopping for random search: `stop: asha(grace: 1, eta: 3)` or `stop: median(grace: 2)`
(docs/search.md, "Early stopping"). Pure decisions over the fitness each member reached after
each of its epochs; `population.py` trains the members one epoch a round and asks `decide` after
every round which members stop.

- **ASHA** (Li et al. 2020, asynchronous successive halving, as Ray Tune's
  `AsyncHyperBandScheduler` applies it): rungs at `grace · eta^k` epochs. When a member reaches a
  rung, its fitness is recorded there; it goes on only if it is in the top `1/eta` of the
  fitness values recorded at that rung so far (at least its `1 - 1/eta` quantile), else it stops.
  Members reaching a rung in the same round are taken in member order, so a search decides the same
  whatever ran first.
- **Median stopping rule** (Golovin et al. 2017, Google Vizier): from epoch `grace` on, a member
  stops when its best fitness so far is worse than the median of the running averages (the mean
  fitness over epochs 1..t) of the other members that reached the same epoch t, once at least
  `MEDIAN_SAMPLES` of them have (Ray Tune's `min_samples_required`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

MEDIAN_SAMPLES = 3


@dataclass(frozen=True)
class Rule:
    """`asha` (with `grace`, `eta`) or `median` (with `grace`)."""

    name: str
    grace: int
    eta: int = 3


@dataclass(frozen=True)
class Stop:
    """Member `member` stops after `epoch` epochs: its `fitness` fell below `cutoff`."""

    member: int
    epoch: int
    fitness: float
    cutoff: float


def rungs(rule: Rule, epochs: int) -> list[int]:
    """ASHA's rungs below `epochs`: grace, grace · eta, grace · eta², ..."""
    out, at = [], rule.grace
    while at < epochs:
        out.append(at)
        at *= rule.eta
    return out


def decide(
    rule: Rule,
    results: dict[int, list[float]],
    running: list[int],
    recorded: dict[int, list[float]],
    epochs: int,
) -> list[Stop]:
    """The members of `running` (who just trained an epoch; `results[m]`: their fitness after each
    epoch) that stop now. `recorded` (ASHA's rung values, by rung) is updated in place."""
    stops = []
    for member in sorted(running):
        history = results[member]
        epoch, fitness = len(history), history[-1]
        if epoch >= epochs or epoch < rule.grace:
            continue
        if rule.name == "asha":
            if epoch not in rungs(rule, epochs):
                continue
            recorded.setdefault(epoch, []).append(fitness)
            cutoff = _quantile(recorded[epoch], 1 - 1 / rule.eta)
            if fitness < cutoff:
                stops.append(Stop(member, epoch, fitness, cutoff))
        else:
            others = [statistics.fmean(h[:epoch]) for m, h in results.items()
                      if m != member and len(h) >= epoch]  # fmt: skip
            if len(others) < MEDIAN_SAMPLES:
                continue
            cutoff = statistics.median(others)
            if max(history) < cutoff:
                stops.append(Stop(member, epoch, fitness, cutoff))
    return stops


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile of `values` by linear interpolation (numpy's default, which Ray Tune uses)."""
    ordered = sorted(v if math.isfinite(v) else -math.inf for v in values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    if ordered[low] == -math.inf:
        return ordered[high] if position > low else ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
