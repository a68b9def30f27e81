"""From a search space to one architecture, and from a grown architecture to fixed sizes.

`sample` is how a search draws a member; `fix_sizes` is what `final.grow` describes: the network
as it stands, with nothing left to grow or choose.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import resolved_args

_SPACE_ATTRS = ("width", "depth", "template", "options", "auto")


def sample(graph: ArchGraph, rng: random.Random) -> ArchGraph:
    """A copy of `graph` with every choice's `chosen` and every set-valued arg drawn from `rng`.

    Ranges stay where they are (their low end, unless grown); the space attributes stay, so the
    result can be mutated or sampled again. The same graph and seed give the same result: nodes
    are visited in tree order, unchosen paths included.
    """
    out = graph.copy()
    for node in out.walk(live_only=False):
        draw_node(out, node, lambda _key, count: rng.randrange(count))
    return out


def draw_node(graph: ArchGraph, node: str, pick: Callable[[str, int], int]) -> None:
    """Draw, in place, what is open at `node`: a choice's path, or each set-valued arg of an op
    (args derived from a drawn `k`, a conv's padding or a pool's stride, follow it). `pick(key,
    count)` gives the index drawn among `count` values, `key` naming what is drawn (`node`, or
    `node:arg` for a set-valued arg): `rng.randrange(count)` for a uniform draw (the draws
    `rng.choice` makes), a stratified population's pools otherwise (`growdsl/search/strata.py`)."""
    attrs = graph[node]
    if attrs["kind"] == "choice":
        attrs["chosen"] = pick(node, len(graph.children(node)))
    elif attrs["kind"] == "op" and attrs.get("options"):
        args = dict(attrs["args"])
        for name, values in attrs["options"].items():
            args[name] = values[pick(f"{node}:{name}", len(values))]
        for name in attrs.get("auto", ()):  # derived from the drawn `k`: conv padding, pool stride
            args[name] = None
        attrs["args"] = resolved_args(attrs["op"], args) if attrs.get("auto") else args


def fix_sizes(graph: ArchGraph) -> ArchGraph:
    """A copy of `graph` with every range, set and repeat template dropped, keeping current sizes."""
    out = graph.copy()
    for node in out.g:
        attrs = out[node]
        for name in _SPACE_ATTRS:
            attrs.pop(name, None)
    return out
