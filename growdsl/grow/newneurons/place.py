"""Writing closed-form neurons into the freshly widened net: the carry gave every fresh neuron
zero weights in and out (`surgery.carry`); `place_neurons` sets its incoming row and bias and its
column in the consumer."""

from __future__ import annotations

from dataclasses import dataclass

from growdsl.grow.net import Net
from growdsl.grow.surgery import Carry, axes, incoming_keys
from growdsl.grow.wire import sendable
from growdsl.lazy import torch


@sendable
@dataclass(frozen=True)
class NeuronValues:
    """A new neuron: `incoming` its row over the layer's inputs, then its bias when the layer has
    one (the layout of `SiteStats.h`); `outgoing` its column over the consumer's outputs."""

    incoming: torch.Tensor
    outgoing: torch.Tensor


def place_neurons(net: Net, done: Carry, neurons: list[NeuronValues]) -> None:
    """In place: the added neurons of `done` (in order) take `neurons`' values; the consumer's
    rows added since the neurons were computed keep the carry's zeros."""
    node = done.edit.node
    rows = list(done.new_neurons[: len(neurons)])
    state = net.model.state_dict()
    weight_key, bias_key = incoming_keys(net.graph, node)
    weight = state[weight_key]
    fan_in = weight[0].numel()
    incoming = torch.stack([n.incoming for n in neurons]).to(weight)
    index = torch.tensor(rows, device=weight.device)
    weight.index_copy_(0, index, incoming[:, :fan_in].reshape(len(rows), *weight.shape[1:]))
    if bias_key is not None:
        state[bias_key].index_copy_(0, index, incoming[:, fan_in])
    (consumer,) = [a for a in axes(net.graph, node, state) if a.role == "consumer"]
    outgoing = torch.stack([n.outgoing for n in neurons], dim=1).to(state[consumer.key])
    # the consumer's rows as they were when the neurons were computed: a consumer that grew in the
    # same step (widenings go from the last layer to the first) keeps zeros for its new rows
    columns = state[consumer.key].narrow(0, 0, outgoing.shape[0])
    columns.index_copy_(1, index + consumer.offset, outgoing)
