"""`Net`: a network as growth sees it, the graph and the module compiled from it, always in step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from growdsl.compile import compile_graph
from growdsl.ir.graph import ArchGraph
from growdsl.lazy import torch

if TYPE_CHECKING:
    from growdsl.compile import GrowNet


@dataclass
class Net:
    """The architecture and its weights. Transforms return a new `Net` and leave this one as is."""

    graph: ArchGraph
    model: GrowNet

    @property
    def device(self) -> torch.device:
        return next((p.device for p in self.model.parameters()), torch.device("cpu"))


def rebuild(
    graph: ArchGraph, state: dict[str, torch.Tensor], training: bool = True, skeleton: GrowNet | None = None
) -> Net:
    """Compile `graph` and load `state` into it without initialising anything first.

    Modules are built on the meta device and take copies of the state's tensors (device and
    values kept), so a rebuild draws nothing from the random number generator — a run that grows
    is as reproducible as one that does not — and shares no storage with the net it came from.
    `skeleton`, `graph` already compiled on the meta device and used for nothing else (the
    carry's), takes the state instead of a second compile: compiling is a large part of a small
    net's carry (docs/benchmarks.md, "Cost of a path-level step against an epoch").
    """
    model = skeleton
    if model is None:
        with torch.device("meta"):
            model = compile_graph(graph)
    model.load_state_dict({k: v.detach().clone() for k, v in state.items()}, assign=True)
    model.train(training)
    return Net(graph, model)
