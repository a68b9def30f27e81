"""The numbers `growdsl payoff` prints: mean and sample sd per arm, and the paired difference of
two arms (same seeds), with its t and 95 % interval.

For n seeds and per-seed differences d_i = a_i - b_i: mean d̄, sample sd s (n - 1 in the
denominator), standard error s / √n, t = d̄ / (s / √n) with n - 1 degrees of freedom, and the
interval d̄ ± t_{0.975, n-1} · s / √n (docs/methods/payoff.md). With one seed there is no sd, t or
interval (None); with differences that are all equal, s = 0 and t is None too (no noise to
measure against), the interval then the single value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    sd: float | None


def summarize(values: list[float]) -> Summary:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return Summary(n, mean, sd)


@dataclass(frozen=True)
class Paired:
    """a - b over the same seeds."""

    n: int
    mean: float
    sd: float | None
    t: float | None
    low: float | None  # the 95 % interval of the mean difference
    high: float | None


def paired(a: list[float], b: list[float]) -> Paired:
    if len(a) != len(b) or not a:
        raise ValueError(f"paired values need the same seeds: {len(a)} and {len(b)}")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    s = summarize(diffs)
    if s.sd is None:
        return Paired(s.n, s.mean, None, None, None, None)
    se = s.sd / math.sqrt(s.n)
    if se == 0:
        return Paired(s.n, s.mean, 0.0, None, s.mean, s.mean)
    half = t975(s.n - 1) * se
    return Paired(s.n, s.mean, s.sd, s.mean / se, s.mean - half, s.mean + half)


def t975(df: float) -> float:
    """Student's t two-sided 95 % quantile at `df` degrees of freedom (any df > 0, Welch's too)."""
    from scipy.stats import t as student  # scikit-learn's dependency; imported only here

    return float(student.ppf(0.975, df))
