"""Data-flow questions over an `ArchGraph`: who produces a node's input, who reads its output.

Growth needs these: widening a `linear` or `conv` adds output channels, and every weight op that
reads those channels must grow matching input columns; a residual `branch add` ties the channels
of every path together. Data flow follows the tree (see `graph.py`): a `seq` chains its live
children, a `branch` feeds its input to every path and merges their outputs, a `choice` is its
live child. Unchosen choice paths carry no data.

Semantics, exactly:

- A *weight op* is one of `WEIGHT_OPS` (`linear`, `conv`, `sepconv`): it owns output channels.
- Every other op passes channels through: the transparent ones unchanged, `flatten` by turning
  each channel of a `[C, H, W]` input into `H * W` consecutive features. Merges pass channels
  through too: `add`/`mean` keep each channel's index, `concat` shifts a path's channels by the
  widths of the paths before it. A `slice` keeps only some channels and a `pad_channels` appends
  zero channels after them: which channel arrives where past either depends on its fixed bounds,
  so a forward walk stops there and records it (`Reach.slices`).
  A plugin op that mixes channels (a layer norm: `OpSig.mixes_channels`) or changes them in a way
  growdsl does not know (a plugin op that is neither transparent nor growable) stops the walk too
  (`Reach.mixers`).
- `producers(node)`: the weight ops whose output channels arrive, through such pass-through ops
  and merges, at `node`'s input; in data-flow order, each once. Empty where the input is the
  network's input.
- `consumers(node)`: the weight ops that read `node`'s output channels, each as a `Consumer` with
  the `offset` and `spread` at which they arrive: channel `c` of `node` becomes the consumer's
  input features `offset + c * spread ... offset + (c + 1) * spread - 1`. Empty where the output
  reaches the network's output first.
- `next_op(node)` / `prev_op(node)`: the same walks, stopping at the first op of any kind; lists,
  since a branch fans out to (and merges from) several paths.

Queries build a `DataFlow` for the graph; to ask many questions of one graph, build it once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import OPS, WEIGHT_OPS
from growdsl.ir.shapes import NodeShapes, infer_shapes

FIXED_CHANNEL_MAPS = ("slice", "pad_channels")  # ops whose fixed bounds say where each channel lands


@dataclass(frozen=True)
class Consumer:
    """A weight op reading a node's channels: channel c arrives at features
    `offset + c * spread` to `offset + (c + 1) * spread - 1` of its input."""

    node: str
    offset: int = 0
    spread: int = 1


@dataclass
class Reach:
    """Everything a node's output channels pass through on their way to the weight ops that read
    them: what widening that node must resize (`consumers`, and `passes`: the pass-through ops
    with per-channel state, such as `bn`, at the offset and spread the channels have there), and
    what forbids widening it (`merges`: the `add`/`mean` branches whose other paths would no longer
    match; `slices`: the `slice` and `pad_channels` ops whose fixed bounds would drop or shift
    channels; `reaches_output`: the channels become the network's output; `mixers`: the ops that
    compute each output from all channels together, such as a layer norm, which a new channel
    would change)."""

    consumers: list[Consumer] = field(default_factory=list)
    passes: list[Consumer] = field(default_factory=list)
    merges: list[str] = field(default_factory=list)
    slices: list[str] = field(default_factory=list)
    mixers: list[str] = field(default_factory=list)
    reaches_output: bool = False


class DataFlow:
    """The data-flow view of one graph: sibling order precomputed, so each query is a walk."""

    def __init__(self, graph: ArchGraph, shapes: dict[str, NodeShapes] | None = None) -> None:
        self.graph = graph
        self._shapes = shapes
        self._kids: dict[str, list[str]] = {}
        self._index: dict[str, int] = {}
        for node in graph.g:
            kids = graph.live_children(node)
            self._kids[node] = kids
            for i, kid in enumerate(kids):
                self._index[kid] = i

    @property
    def shapes(self) -> dict[str, NodeShapes]:
        if self._shapes is None:
            self._shapes = infer_shapes(self.graph)
        return self._shapes

    def _is_weight(self, node: str) -> bool:
        return self.graph.kind(node) == "op" and self.graph[node]["op"] in WEIGHT_OPS

    def _is_op(self, node: str) -> bool:
        return self.graph.kind(node) == "op"

    # ------------------------------------------------------------ backward

    def producers(self, node: str) -> list[str]:
        return self._backward(node, self._is_weight)

    def prev_op(self, node: str) -> list[str]:
        return self._backward(node, self._is_op)

    def _backward(self, node: str, stop: Callable[[str], bool]) -> list[str]:
        """Ops satisfying `stop` found walking back from `node`'s input, passing through the rest."""
        found: list[str] = []
        work = [(node, False)]  # (node, True: look at its output / False: look at its input)
        while work:
            n, at_output = work.pop()
            if at_output:
                kind = self.graph.kind(n)
                kids = self._kids[n]
                if kind == "op" and stop(n):
                    found.append(n)
                elif kind == "branch" and kids:
                    work.extend((p, True) for p in reversed(kids))
                elif kind != "op" and kids:
                    work.append((kids[-1], True))
                else:  # a pass-through op or an empty container: look before it
                    work.append((n, False))
                continue
            parent = self.graph.parent(n)
            if parent is None:
                continue  # the network's input
            if self.graph.kind(parent) == "seq" and self._index[n] > 0:
                work.append((self._kids[parent][self._index[n] - 1], True))
            else:  # first in a seq, a branch path, a choice's path: its input is the parent's
                work.append((parent, False))
        return list(dict.fromkeys(found))

    # ------------------------------------------------------------ forward

    def consumers(self, node: str) -> list[Consumer]:
        return self._forward(node, self._is_weight).consumers

    def next_op(self, node: str) -> list[str]:
        return [c.node for c in self._forward(node, self._is_op).consumers]

    def reach(self, node: str) -> Reach:
        """Where `node`'s output channels go, up to the weight ops that read them (see `Reach`)."""
        return self._forward(node, self._is_weight)

    def _forward(self, node: str, stop: Callable[[str], bool]) -> Reach:
        """Ops satisfying `stop` that `node`'s output reaches, with the offset and spread on arrival,
        and what the channels pass through on the way."""
        reach = Reach()
        work = [(node, True, 0, 1)]  # (node, True: leaving its output / False: entering it, ...)
        while work:
            n, leaving, offset, spread = work.pop()
            if not leaving:
                kind = self.graph.kind(n)
                kids = self._kids[n]
                if kind == "op" and stop(n):
                    reach.consumers.append(Consumer(n, offset, spread))
                elif kind == "op" and self.graph[n]["op"] in FIXED_CHANNEL_MAPS:
                    reach.slices.append(n)
                elif kind == "op" and self._mixes(n):
                    reach.mixers.append(n)
                elif kind == "op":
                    reach.passes.append(Consumer(n, offset, spread))
                    if self.graph[n]["op"] == "flatten":
                        per_channel = math.prod(self.shapes[n].inp[1:])
                        offset, spread = offset * per_channel, spread * per_channel
                    work.append((n, True, offset, spread))
                elif kind == "branch" and kids:
                    work.extend((p, False, offset, spread) for p in reversed(kids))
                elif kids:
                    work.append((kids[0], False, offset, spread))
                else:
                    work.append((n, True, offset, spread))
                continue
            parent = self.graph.parent(n)
            if parent is None:
                reach.reaches_output = True
                continue
            siblings = self._kids[parent]
            kind = self.graph.kind(parent)
            if kind == "seq" and self._index[n] + 1 < len(siblings):
                work.append((siblings[self._index[n] + 1], False, offset, spread))
                continue
            if kind == "branch" and self.graph[parent]["merge"] == "concat":
                offset += sum(self._width(p) for p in siblings[: self._index[n]])
            elif kind == "branch" and len(siblings) > 1:
                reach.merges.append(parent)
            work.append((parent, True, offset, spread))
        reach.consumers = list(dict.fromkeys(reach.consumers))
        reach.passes = list(dict.fromkeys(reach.passes))
        reach.merges = list(dict.fromkeys(reach.merges))
        reach.slices = list(dict.fromkeys(reach.slices))
        reach.mixers = list(dict.fromkeys(reach.mixers))
        return reach

    def _mixes(self, node: str) -> bool:
        """Whether op `node` mixes the channels it receives in a way a widening cannot follow."""
        sig = OPS[self.graph[node]["op"]]
        return sig.mixes_channels or (sig.plugin is not None and not sig.transparent)

    def _width(self, path: str) -> int:
        """Channels (or features) a branch path puts into a concat."""
        return self.shapes[path].out[0]

    # ------------------------------------------------------------ transparency

    def is_transparent(self, node: str) -> bool:
        """Whether `node` passes its input channels through unchanged, channel for channel."""
        kind = self.graph.kind(node)
        if kind == "op":
            sig = OPS[self.graph[node]["op"]]
            return sig.transparent and not sig.mixes_channels
        kids = self._kids[node]
        if kind == "branch" and self.graph[node]["merge"] == "concat":
            return False
        return all(self.is_transparent(k) for k in kids)


def producers(graph: ArchGraph, node: str) -> list[str]:
    """The weight ops whose output channels form `node`'s input (see the module docstring)."""
    return DataFlow(graph).producers(node)


def consumers(graph: ArchGraph, node: str) -> list[Consumer]:
    """The weight ops reading `node`'s output channels, with offset and spread (module docstring)."""
    return DataFlow(graph).consumers(node)


def reach(graph: ArchGraph, node: str) -> Reach:
    """Where `node`'s output channels go and what they pass through (see `Reach`)."""
    return DataFlow(graph).reach(node)


def is_transparent(graph: ArchGraph, node: str) -> bool:
    """Whether `node` passes channels through unchanged (`bn`, activations, pools, dropout, ...)."""
    return DataFlow(graph).is_transparent(node)


def next_op(graph: ArchGraph, node: str) -> list[str]:
    """The first ops (of any kind) that receive `node`'s output."""
    return DataFlow(graph).next_op(node)


def prev_op(graph: ArchGraph, node: str) -> list[str]:
    """The last ops (of any kind) whose output forms `node`'s input."""
    return DataFlow(graph).prev_op(node)
