"""The architectures `growdsl payoff` trains beside the grown net: the start net, uniform widths
at a given size, and a sweep of uniform widths across the spec's ranges.

"Uniform" means one place in every growable width range: a fraction t puts each range `lo..hi` at
`round(lo * (hi / lo) ** t)`, so ranges with the same bounds get the same width, t = 0 is the start
net and t = 1 the ranges' high ends (a sweep's points are spread evenly in log width, as width
sweeps usually are). Past t = 1 the widths go beyond the ranges: a net grown deeper may need wider
layers than the ranges allow to match its params. Depth (`repeat lo..hi`) stays at its start.
"""

from __future__ import annotations

import math

from growdsl import ir
from growdsl.ir.graph import ArchGraph

MAX_FRACTION = 4.0  # how far past the ranges' high ends a size match may go


def width_ranges(graph: ArchGraph) -> dict[str, tuple[int, int]]:
    """`{node: (lo, hi)}` for every op whose width may grow."""
    return {n: graph[n]["width"] for n in graph.walk() if graph.kind(n) == "op" and graph[n].get("width")}


def has_widths(graph: ArchGraph) -> bool:
    return any(lo < hi for lo, hi in width_ranges(graph).values())


def widths_of(graph: ArchGraph) -> list[int]:
    """The growable layers' widths now, in graph order."""
    return [graph[n]["args"]["out"] for n in width_ranges(graph)]


def widths_at(graph: ArchGraph, t: float) -> dict[str, int]:
    """Each growable layer's width at fraction `t` of its range (log scale)."""
    return {n: max(1, round(lo * (hi / lo) ** t)) for n, (lo, hi) in width_ranges(graph).items()}


def at_fraction(graph: ArchGraph, t: float) -> ArchGraph:
    """A copy of `graph` (the lowered start net) with every growable width at fraction `t`."""
    out = graph.copy()
    for node, width in widths_at(graph, t).items():
        out[node]["args"] = {**out[node]["args"], "out": width}
    return out


def sweep_fractions(k: int) -> list[float]:
    """k fractions from the start net (0) to the ranges' high ends (1)."""
    return [0.0] if k == 1 else [i / (k - 1) for i in range(k)]


def fraction_for_params(graph: ArchGraph, params: int) -> float:
    """The fraction whose uniform net has the params nearest `params`: bisection on a grid of
    steps fine enough that the widest range moves by at most one neuron a step (params grow with
    t). Ties go to the smaller net."""
    hi = max((h / lo for lo, h in width_ranges(graph).values()), default=1.0)
    widest = max((h for _, h in width_ranges(graph).values()), default=1)
    steps = max(1, math.ceil(widest * MAX_FRACTION))
    count = lambda i: ir.param_count(at_fraction(graph, i * MAX_FRACTION / steps))  # noqa: E731
    if hi <= 1.0 or count(0) >= params:
        return 0.0
    lo_i, hi_i = 0, steps
    if count(hi_i) <= params:
        return MAX_FRACTION
    while hi_i - lo_i > 1:  # invariant: count(lo_i) < params <= count(hi_i)
        mid = (lo_i + hi_i) // 2
        lo_i, hi_i = (mid, hi_i) if count(mid) < params else (lo_i, mid)
    best = lo_i if params - count(lo_i) <= count(hi_i) - params else hi_i
    return best * MAX_FRACTION / steps
