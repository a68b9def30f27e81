"""From a search space to one architecture, and from a grown architecture to fixed sizes.

`sample` is how a search draws a member; `fix_sizes` is what `final.grow` describes: the network
as it stands, with nothing left to grow or choose.
"""

from __future__ import annotations

import random

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
        draw_node(out, node, rng)
    return out


def draw_node(graph: ArchGraph, node: str, rng: random.Random) -> None:
    """Draw, in place, what is open at `node`: a choice's path, or each set-valued arg of an op
    (args derived from a drawn `k`, a conv's padding or a pool's stride, follow it)."""
    attrs = graph[node]
    if attrs["kind"] == "choice":
        attrs["chosen"] = rng.randrange(len(graph.children(node)))
    elif attrs["kind"] == "op" and attrs.get("options"):
        args = dict(attrs["args"])
        for name, values in attrs["options"].items():
            args[name] = rng.choice(values)
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
