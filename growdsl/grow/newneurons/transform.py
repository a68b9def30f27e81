"""What GradMax and TINY are as growth transforms: per site (`sites.py`), the step's statistics
(`collect.py`) give a method's new neurons in closed form, best first, each with its score; each
becomes one candidate `Widen(layer, (None,))` whose payload the shared step writes into the
widened net (`place.py`). A method supplies `neurons(stats, k)`; the rest is here."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from growdsl.errors import SpecError
from growdsl.grow.net import Net
from growdsl.grow.newneurons.collect import SiteStats, collect_stats
from growdsl.grow.newneurons.place import NeuronValues, place_neurons
from growdsl.grow.newneurons.sites import NeuronSite, NoSite, find_neuron_site
from growdsl.grow.surgery import Init
from growdsl.grow.transform import Candidate, LossFn, OptionsTransform, Pair, step_limit, targets
from growdsl.ir.dataflow import DataFlow
from growdsl.ir.edits import Widen
from growdsl.ir.graph import ArchGraph
from growdsl.lazy import torch


@dataclass(frozen=True)
class Proposed:
    """One closed-form neuron of a site: its values, its score, and what its history keeps."""

    values: NeuronValues
    score: float
    detail: dict[str, Any]


@dataclass
class NewNeuronTransform(OptionsTransform, ABC):
    """The shared part of `gradmax` and `tiny`; a subclass sets `name`, and `neurons`."""

    name: str = ""

    @abstractmethod
    def neurons(self, stats: SiteStats, k: int, net: Net) -> list[Proposed]:
        """At most `k` new neurons for `stats.site`, best first."""

    def sites(self, graph: ArchGraph) -> tuple[list[NeuronSite], dict[str, str]]:
        """The target layers with a width range that can gain these neurons, and why each other
        target layer with a width range cannot."""
        flow = DataFlow(graph)
        found, skipped = [], {}
        for node in sorted(targets(graph, self.options["on"], self.on_span), key=graph.ops().index):
            if not graph[node].get("width"):
                continue
            try:
                found.append(find_neuron_site(graph, node, flow))
            except NoSite as why:
                skipped[node] = str(why)
        return found, skipped

    def check(self, graph: ArchGraph) -> None:
        """`on:` names labels; a target layer with a width range that these neurons cannot grow
        (a conv, a bn after it) is an error here, before any training."""
        super().check(graph)
        _, skipped = self.sites(graph)
        if skipped:
            node, why = next(iter(skipped.items()))
            raise SpecError(
                f"{self.name} cannot grow {node}: {why}",
                self.on_span,
                hint=f"name the layers it can grow with on: [labels] (docs/methods/{self.name}.md)",
            )

    def limit(self, net: Net) -> int | None:
        """`count`, or `frac` of the current neurons of the sites (at least one)."""
        sites, _ = self.sites(net.graph)
        return step_limit(self.options, sum(net.graph[s.node]["args"]["out"] for s in sites))

    def continual(self) -> NewNeuronTransform:
        """As it is: it adds brand-new neurons only."""
        return self

    def propose(self, net: Net, train: Pair, loss_fn: LossFn, rng: torch.Generator) -> list[Candidate]:
        """Per site, up to the step's limit (and the room in its width range) of new neurons."""
        sites, _ = self.sites(net.graph)
        sites = [s for s in sites if net.graph[s.node]["width"][1] > net.graph[s.node]["args"]["out"]]
        if not sites:
            return []
        x, y = train
        take = torch.randperm(len(x), generator=rng)[: self.options["samples"]].to(x.device)
        stats = collect_stats(net.model, sites, x[take].to(net.device), y[take].to(net.device), loss_fn)
        limit = self.limit(net)
        candidates = []
        for site_stats in stats:
            node = site_stats.site.node
            room = net.graph[node]["width"][1] - net.graph[node]["args"]["out"]
            for rank, neuron in enumerate(self.neurons(site_stats, min(limit, room), net)):
                detail = {"rank": rank, **neuron.detail}
                edit = Widen(node, (None,))
                candidates.append(Candidate(self.name, edit, neuron.score, detail, neuron.values))
        return candidates

    def init(self, chosen: list[Candidate]) -> Init:
        """Write the chosen neurons' rows and columns into the neurons the widening added."""
        values = [c.payload for c in chosen]
        return lambda net, done: place_neurons(net, done, values)

    def describe(self, chosen: list[Candidate], net: Net) -> dict[str, Any]:
        """How many neurons this line's widening added, the layer's width after it, and each
        neuron's own detail (its rank and the method's numbers) in the order added."""
        return {
            "added": len(chosen),
            "width": net.graph[chosen[0].node]["args"]["out"],
            "neurons": [c.detail for c in chosen],
        }
