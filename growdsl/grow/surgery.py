"""Weight surgery: widen a layer by copies of its neurons or by fresh ones.

A neuron of a weight op (a `linear` unit, a `conv` or `sepconv` filter) is indexed in more
tensors than its own row: the per-channel state of every op its channel passes through (`bn`),
and the input columns of every weight op that reads it (through `flatten` a channel is `H * W`
consecutive columns; after a `concat` it sits at an offset). `widen` finds all of them with the
data-flow walk (`growdsl.ir.dataflow.reach`) and grows each along the right axis, so that
splitting, firefly, path-level transforms and PBT mixing share one implementation.

Every widening is described by index maps, `key -> (dim, new_to_old)` with -1 for a fresh
entry, so the optimizer's state follows the weights exactly (`carry_state`): a copied neuron's
momentum goes to its copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from growdsl.grow.net import Net, rebuild
from growdsl.ir.dataflow import DataFlow, Reach
from growdsl.ir.ops import WEIGHT_OPS
from growdsl.lazy import torch


@dataclass(frozen=True)
class Axis:
    """One tensor axis indexed by a layer's output channels: channel c is entries
    `offset + c * spread ... offset + (c + 1) * spread - 1` of dimension `dim` of `key`."""

    key: str
    dim: int
    offset: int = 0
    spread: int = 1
    role: str = "own"  # own: the layer's rows | pass: per-channel state on the way | consumer


IndexMaps = dict[str, tuple[int, "torch.Tensor"]]


@dataclass
class Widening:
    """The result of `widen`: the new net, where the new neurons are, and how every tensor grew."""

    net: Net
    node: str
    new_neurons: list[int]
    index_maps: IndexMaps


def widen_blocker(graph, node: str, flow: DataFlow | None = None) -> str | None:
    """Why `node` cannot gain output neurons, or None when it can."""
    attrs = graph[node]
    if attrs["kind"] != "op" or attrs["op"] not in WEIGHT_OPS:
        return f"{node} is not a weight op ({', '.join(WEIGHT_OPS)})"
    if attrs["op"] == "conv" and attrs["args"].get("groups", 1) != 1:
        return f"{node} is a grouped conv"
    reach = (flow or DataFlow(graph)).reach(node)
    if reach.reaches_output:
        return f"{node}'s channels are the network's output"
    if reach.merges:
        merge = reach.merges[0]
        return f"{node}'s channels meet other paths in branch {graph[merge]['merge']} at {merge}"
    for c in reach.consumers:
        if graph[c.node]["op"] == "conv" and graph[c.node]["args"].get("groups", 1) != 1:
            return f"{node} feeds the grouped conv {c.node}"
    return None


def axes(graph, node: str, state: dict[str, torch.Tensor], reach: Reach | None = None) -> list[Axis]:
    """Every tensor axis indexed by `node`'s output channels (see the module docstring)."""
    reach = reach or DataFlow(graph).reach(node)
    own = f"{node}.pointwise" if graph[node]["op"] == "sepconv" else node
    found = [Axis(f"{own}.{p}", 0) for p in ("weight", "bias") if f"{own}.{p}" in state]
    for p in reach.passes:
        if graph[p.node]["op"] == "bn":
            for buf in ("weight", "bias", "running_mean", "running_var"):
                if f"{p.node}.{buf}" in state:
                    found.append(Axis(f"{p.node}.{buf}", 0, p.offset, p.spread, "pass"))
    for c in reach.consumers:
        if graph[c.node]["op"] == "sepconv":
            found.append(Axis(f"{c.node}.depthwise.weight", 0, c.offset, c.spread, "pass"))
            found.append(Axis(f"{c.node}.pointwise.weight", 1, c.offset, c.spread, "consumer"))
        else:
            found.append(Axis(f"{c.node}.weight", 1, c.offset, c.spread, "consumer"))
    return found


def incoming_keys(graph, node: str) -> tuple[str, str | None]:
    """The state-dict keys of `node`'s incoming weights and bias (a sepconv's pointwise conv)."""
    own = f"{node}.pointwise" if graph[node]["op"] == "sepconv" else node
    bias = graph[node]["args"].get("bias", True)
    return f"{own}.weight", (f"{own}.bias" if bias else None)


def _new_to_old(axis: Axis, size: int, width: int, sources: list[int | None]) -> torch.Tensor:
    """Indices into the old axis for every entry of the new one; -1 marks a fresh entry."""
    end = axis.offset + width * axis.spread  # the new channels go right after the old ones
    added: list[int] = []
    for src in sources:
        start = None if src is None else axis.offset + src * axis.spread
        added.extend([-1] * axis.spread if start is None else range(start, start + axis.spread))
    return torch.tensor([*range(end), *added, *range(end, size)], dtype=torch.long)


def _fresh_value(key: str, graph) -> float:
    """A fresh channel enters with no effect (zero weights into it and out of it) and identity
    batch norm (scale 1, running variance 1)."""
    node, _, name = key.rpartition(".")
    is_bn = node in graph and graph[node].get("op") == "bn"
    return 1.0 if is_bn and name in ("weight", "running_var") else 0.0


def gather(old: torch.Tensor, dim: int, new_to_old: torch.Tensor, fresh: float = 0.0) -> torch.Tensor:
    """`old` re-indexed along `dim`; entries marked -1 are filled with `fresh`."""
    idx = new_to_old.to(old.device)
    out = old.index_select(dim, idx.clamp(min=0))
    mask = (idx < 0).view([-1 if d == dim else 1 for d in range(old.dim())])
    return out.masked_fill(mask, fresh) if bool((idx < 0).any()) else out


def _fresh_depthwise(t: torch.Tensor, new_to_old: torch.Tensor) -> torch.Tensor:
    """A fresh channel's depthwise filter passes its input through (1 at the kernel's centre), so
    its pointwise columns alone decide what it contributes."""
    k = t.shape[-1]
    fresh = (new_to_old < 0).nonzero().flatten()
    t[fresh, :, k // 2, k // 2] = 1.0
    return t


def widen(net: Net, node: str, sources: list[int | None]) -> Widening:
    """Add `len(sources)` output neurons to `node`: each a copy of neuron `sources[k]` (incoming
    weights, bias, per-channel state, and its columns in every consumer) or, for None, fresh
    (zero weights in and out, identity batch norm). The copies' outgoing columns are copied
    unscaled: the transform decides how to share them (a split halves both). Old net untouched."""
    graph = net.graph
    flow = DataFlow(graph)
    blocker = widen_blocker(graph, node, flow)
    if blocker is not None:
        raise ValueError(f"cannot widen: {blocker}")
    width = graph[node]["args"]["out"]
    state = net.model.state_dict()
    maps: IndexMaps = {}
    new_state = dict(state)
    for axis in axes(graph, node, state, flow.reach(node)):
        old = state[axis.key]
        new_to_old = _new_to_old(axis, old.shape[axis.dim], width, sources)
        grown = gather(old, axis.dim, new_to_old, _fresh_value(axis.key, graph))
        if axis.key.endswith(".depthwise.weight"):
            grown = _fresh_depthwise(grown, new_to_old)
        new_state[axis.key] = grown
        maps[axis.key] = (axis.dim, new_to_old)
    new_graph = graph.copy()
    new_graph[node]["args"] = {**graph[node]["args"], "out": width + len(sources)}
    grown_net = rebuild(new_graph, new_state, net.model.training)
    return Widening(grown_net, node, list(range(width, width + len(sources))), maps)


def scale_outgoing(net: Net, node: str, neuron: int, factor: float) -> None:
    """Multiply neuron `neuron`'s input columns in every consumer of `node` by `factor`, in place
    (a split gives each offspring half: `factor = 0.5`)."""
    state = net.model.state_dict()
    with torch.no_grad():
        for axis in axes(net.graph, node, state):
            if axis.role == "consumer":
                start = axis.offset + neuron * axis.spread
                state[axis.key].narrow(axis.dim, start, axis.spread).mul_(factor)


def carry_state(named_state: dict[str, dict[str, torch.Tensor]], maps: IndexMaps) -> None:
    """Re-index per-parameter optimizer state (momentum, Adam moments) like the weights, in place:
    a copy's state is its source's, a fresh entry's is zero."""
    for key, (dim, new_to_old) in maps.items():
        for name, value in named_state.get(key, {}).items():
            if torch.is_tensor(value) and value.dim() > dim:
                named_state[key][name] = gather(value, dim, new_to_old, 0.0)
