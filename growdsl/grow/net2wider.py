"""`net2wider(...)`: Net2WiderNet as a growth transform (Chen, Goodfellow, Shlens, ICLR 2016;
docs/methods/net2net.md).

Each new neuron copies an existing neuron chosen at random: the shared carry gives the copy the
neuron's incoming row, its BN entries and its outgoing columns (`Widen(layer, (neuron,))`, as a
split's copy); `init` then shares the outgoing columns among the neuron and its copies so they
sum to the old column, which keeps the function (the paper divides by the replication count). The
paper's copies, equal in and out, would get equal gradients forever; here the shares are the
paper's `1/(r+1)` perturbed by up to `noise` of themselves, still summing to one, so the copies
drift apart while the function stays the same up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from growdsl.errors import SpecError
from growdsl.grow.net import Net
from growdsl.grow.registry import register_transform
from growdsl.grow.surgery import Carry, Init, scale_outgoing_columns, widen_blocker
from growdsl.grow.transform import (
    Candidate,
    LossFn,
    OptionsTransform,
    Pair,
    step_limit,
    step_options,
    targets,
)
from growdsl.grow.wire import sendable
from growdsl.ir.cost import added_cost
from growdsl.ir.dataflow import DataFlow
from growdsl.ir.edits import Widen
from growdsl.ir.graph import ArchGraph
from growdsl.lazy import torch
from growdsl.options import Option, number

NET2WIDER_OPTIONS: dict[str, Option] = {
    **step_options(0.25, "add"),
    "noise": Option(0.1, number(0.0, 1.0, hi_open=True), "relative perturbation of the outgoing shares"),
}


@sendable
@dataclass(frozen=True)
class Copy:
    """A candidate's payload: copy `neuron`; `jitter`, drawn in [−1, 1), perturbs its share."""

    neuron: int
    jitter: float


@dataclass
class Net2WiderTransform(OptionsTransform):
    """The `net2wider` transform of a grow block; options as in `NET2WIDER_OPTIONS`."""

    OPTIONS: ClassVar[dict[str, Option]] = NET2WIDER_OPTIONS

    name: str = "net2wider"

    def layers(self, graph: ArchGraph) -> list[str]:
        """Target layers with a width range that can gain neurons (linear, conv or sepconv)."""
        flow = DataFlow(graph)
        chosen = targets(graph, self.options["on"], self.on_span)
        return [
            n
            for n in graph.ops()
            if n in chosen and graph[n].get("width") and widen_blocker(graph, n, flow) is None
        ]

    def limit(self, net: Net) -> int | None:
        """`count`, or `frac` of the current neurons of the layers it grows (at least one)."""
        return step_limit(self.options, sum(net.graph[n]["args"]["out"] for n in self.layers(net.graph)))

    def continual(self) -> Net2WiderTransform:
        """Never: it changes old neurons' outgoing weights."""
        raise _changes_old(self)

    def propose(self, net: Net, train: Pair, loss_fn: LossFn, rng: torch.Generator) -> list[Candidate]:
        """Every neuron of every layer with room, once, at a random score times its cost, so the
        policy's ranking by score per added parameter picks neurons uniformly at random."""
        candidates = []
        for node in self.layers(net.graph):
            width = net.graph[node]["args"]["out"]
            if net.graph[node]["width"][1] <= width:
                continue
            params, _ = added_cost(net.graph, Widen(node, (None,)))
            scores = (torch.rand(width, generator=rng, dtype=torch.float64) + 1e-12).tolist()
            jitters = (torch.rand(width, generator=rng, dtype=torch.float64) * 2 - 1).tolist()
            for neuron, (score, jitter) in enumerate(zip(scores, jitters, strict=True)):
                detail = {"neuron": neuron}
                candidates.append(
                    Candidate(self.name, Widen(node, (neuron,)), score * params, detail, Copy(neuron, jitter))
                )
        return candidates

    def init(self, chosen: list[Candidate]) -> Init:
        """Share each copied neuron's outgoing columns among it and its copies (see the module
        docstring)."""
        copies: list[Copy] = [c.payload for c in chosen]
        noise = self.options["noise"]
        return lambda net, done: _share_columns(net, done, copies, noise)

    def describe(self, chosen: list[Candidate], net: Net) -> dict[str, Any]:
        return {
            "copied": [c.payload.neuron for c in chosen],
            "width": net.graph[chosen[0].node]["args"]["out"],
            "noise": self.options["noise"],
        }


def _changes_old(transform: OptionsTransform) -> SpecError:
    """Net2Wider re-shares old neurons' columns: not with tasks (continual learning)."""
    return SpecError(
        f"{transform.name} changes old neurons' outgoing weights, which continual learning keeps frozen",
        transform.call.span if transform.call is not None else None,
        expected="firefly(wider: N), gradmax or tiny, which add new neurons",
    )


def _share_columns(net: Net, done: Carry, copies: list[Copy], noise: float) -> None:
    """Neuron j copied r times: it and each copy take `(1 + noise·ξ)/(r + 1)` of j's old columns,
    the copies' ξ their jitters and j's minus their sum, so the shares sum to one."""
    added = done.new_neurons
    groups: dict[int, list[tuple[int, float]]] = {}
    for index, copy in zip(added, copies, strict=True):
        groups.setdefault(copy.neuron, []).append((index, copy.jitter))
    shares: dict[int, float] = {}
    for neuron, members in groups.items():
        count = len(members) + 1
        shares[neuron] = (1 - noise * sum(j for _, j in members)) / count
        shares.update({index: (1 + noise * jitter) / count for index, jitter in members})
    scale_outgoing_columns(net, done.edit.node, shares)


register_transform("net2wider", Net2WiderTransform.from_call)
