"""`net2deeper(...)`: Net2DeeperNet as a growth transform (Chen, Goodfellow, Shlens, ICLR 2016;
docs/methods/net2net.md).

A new layer is a new copy of a growable `repeat lo..hi` (`AppendCopy(repeat)`), initialised to
the identity by the rules firefly's new layers use (`deepen.identity_init`): identity weights,
Dirac kernels, batch norm set from its input's statistics, a ReLU that is the identity on a
non-negative input. The paper chooses where to deepen by hand; here each growable repeat with
room is a candidate at a random score times its cost, so the policy picks uniformly at random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from growdsl.errors import SpecError
from growdsl.grow.deepen import NotIdentity, deepen, identity_copy, identity_init
from growdsl.grow.net import Net
from growdsl.grow.registry import register_transform
from growdsl.grow.surgery import Init
from growdsl.grow.transform import (
    Candidate,
    LossFn,
    OptionsTransform,
    Pair,
    labels_option,
    targets,
)
from growdsl.ir.cost import added_cost
from growdsl.ir.edits import AppendCopy
from growdsl.ir.graph import ArchGraph
from growdsl.lazy import torch
from growdsl.options import Option, integer

NET2DEEPER_OPTIONS: dict[str, Option] = {
    "count": Option(1, integer(1), "new layers one step may add"),
    "on": Option(None, labels_option, "labels of layers whose repeat may deepen"),
    "samples": Option(256, integer(1), "training samples a new batch norm's statistics come from"),
}


@dataclass
class Net2DeeperTransform(OptionsTransform):
    """The `net2deeper` transform of a grow block; options as in `NET2DEEPER_OPTIONS`."""

    OPTIONS: ClassVar[dict[str, Option]] = NET2DEEPER_OPTIONS

    name: str = "net2deeper"

    def repeats(self, graph: ArchGraph) -> list[str]:
        """Growable repeats (`repeat lo..hi`) holding a target layer (any, without `on`)."""
        chosen = targets(graph, self.options["on"], self.on_span)
        return [
            n
            for n in graph.walk()
            if graph.kind(n) == "seq" and graph[n].get("depth") and set(graph.ops(n)) & chosen
        ]

    def check(self, graph: ArchGraph) -> None:
        """`on:` names labels, and some target sits in a growable repeat."""
        super().check(graph)
        if not self.repeats(graph):
            raise SpecError(
                "net2deeper adds copies of a growable repeat, and no target layer is in one",
                self.on_span,
                hint="write the layers to deepen as repeat 1..4 { ... } (docs/methods/net2net.md)",
            )

    def limit(self, net: Net) -> int | None:
        return self.options["count"]

    def continual(self) -> Net2DeeperTransform:
        """Never: a new layer sits in every task's path."""
        raise SpecError(
            "net2deeper's new layers sit in every task's path, which continual learning keeps fixed",
            self.call.span if self.call is not None else None,
            expected="firefly(wider: N), gradmax or tiny, which add new neurons",
        )

    def propose(self, net: Net, train: Pair, loss_fn: LossFn, rng: torch.Generator) -> list[Candidate]:
        """Each repeat with room whose new copy can be the identity, at a random score times its
        cost; the payload is the identity `init`, its batch norms' statistics measured now."""
        graph = net.graph
        x = train[0]
        sample = x[torch.randperm(len(x), generator=rng)[: self.options["samples"]]].to(net.device)
        candidates = []
        for seq in self.repeats(graph):
            if graph[seq]["depth"][1] <= len(graph.children(seq)):
                continue
            try:  # whether the body can be the identity shows only on the grown net
                deepen(net, seq, sample, torch.Generator().manual_seed(0))
            except NotIdentity:
                continue
            params, _ = added_cost(graph, AppendCopy(seq))
            score = float(torch.rand((), generator=rng, dtype=torch.float64)) + 1e-12
            copy = identity_copy(net, seq, sample)
            candidates.append(Candidate(self.name, AppendCopy(seq), score * max(params, 1), {}, copy))
        return candidates

    def init(self, chosen: list[Candidate]) -> Init:
        """The identity of the chosen repeat's new copy (each new layer is its own edit)."""
        return identity_init(chosen[0].payload)

    def describe(self, chosen: list[Candidate], net: Net) -> dict[str, Any]:
        return {"depth": len(net.graph.children(chosen[0].node))}


register_transform("net2deeper", Net2DeeperTransform.from_call)
