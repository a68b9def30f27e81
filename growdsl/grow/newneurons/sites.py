"""Where GradMax and TINY add neurons: a `linear` layer whose channels go, through at most one
activation with σ(0) = 0 (and dropout), into exactly one `linear` layer that reads them as
columns of its weight (`node -> [σ] -> consumer`).

The closed forms describe the new neurons by their incoming row (over the layer's input) and
their outgoing column (over the consumer's outputs), so both ends must be plain matrices: a conv
consumer would need the kernel's spatial structure (GradMax's reference code grows convs through
an auxiliary conv of kernel k1 + k2 − 1; not implemented here), and a `bn` in between would
renormalise the new neurons' small activations in training mode. σ(0) = 0 is what makes a neuron
with no input contribute nothing (a sigmoid's 0.5 would shift the consumer)."""

from __future__ import annotations

from dataclasses import dataclass

from growdsl.grow.surgery import widen_blocker
from growdsl.ir.dataflow import DataFlow
from growdsl.ir.graph import ArchGraph

ZERO_AT_ZERO = ("relu", "gelu", "tanh", "silu")  # activations with σ(0) = 0
_PASS = ("dropout", "identity", "flatten")  # the identity in eval mode, channel by channel


@dataclass(frozen=True)
class NeuronSite:
    """A layer `node` that can gain closed-form neurons, the `consumer` reading its channels from
    column `offset` on, and the activation between them (None: none)."""

    node: str
    consumer: str
    offset: int
    activation: str | None


class NoSite(Exception):
    """Why a layer cannot gain closed-form neurons; carried as data into the transform's report."""


def find_neuron_site(graph: ArchGraph, node: str, flow: DataFlow | None = None) -> NeuronSite:
    """The site of `node`, or NoSite saying why there is none."""
    flow = flow or DataFlow(graph)
    attrs = graph[node]
    if attrs.get("op") != "linear":
        raise NoSite(f"{node} is a {attrs.get('op', attrs['kind'])}: only linear layers are implemented")
    blocker = widen_blocker(graph, node, flow)
    if blocker is not None:
        raise NoSite(blocker)
    reach = flow.reach(node)
    if len(reach.consumers) != 1:
        raise NoSite(f"{node}'s channels are read by {len(reach.consumers)} layers, not one")
    (consumer,) = reach.consumers
    if graph[consumer.node]["op"] != "linear" or consumer.spread != 1:
        raise NoSite(f"{node}'s channels are read by {consumer.node}, not a linear layer")
    activations = []
    for p in reach.passes:
        op = graph[p.node]["op"]
        if op in ZERO_AT_ZERO:
            activations.append(op)
        elif op not in _PASS:
            allowed = ", ".join(ZERO_AT_ZERO)
            raise NoSite(f"{node}'s channels pass {op} at {p.node} ({allowed} or dropout only)")
    if len(activations) > 1:
        raise NoSite(f"{node}'s channels pass {len(activations)} activations before {consumer.node}")
    return NeuronSite(node, consumer.node, consumer.offset, activations[0] if activations else None)
