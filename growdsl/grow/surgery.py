"""Weight surgery: one carry moves weights (and optimizer state) across any edit.

Every structural change is an edit value (`growdsl.ir.edits`); `carry(net, edit, init)` applies it
to the graph, then builds the new net's tensors from the old ones by name: a tensor whose node
moved (`renames`) keeps its values under the new name; a tensor an edit re-indexes gets its
entries through an index map; a tensor that exists only in the new net is fresh; then the
transform's `init` sets what the edit added (a split's offspring, a new neuron's row, an identity
layer). So splitting, firefly, path-level transforms and PBT mixing share one implementation, and
`Carry.sources` says where every new tensor came from, which is what lets the optimizer state
follow exactly (`carry_optimizer_state`).

Where each tensor of the new net comes from, by edit (docs/architecture.md, "Edits"):

- `Widen(node, added)`: every tensor axis indexed by `node`'s output channels (see below) is
  re-indexed: old entries stay, a copy takes its source neuron's entries, a fresh neuron gets
  zero weights in and out and identity batch norm.
- `AppendCopy(seq)`: the new copy's tensors are fresh (torch's default initialisation, drawn from
  the carry's generator); `init` usually makes it the identity. An `init` that sets all of them
  says so by being an `Overwrite`, and the carry then skips drawing them (the same result).
- `Wrap(node, merge, paths)`: path 0 is the old subtree, renamed; with `add` or `mean` every other
  path copies it whole; with `concat` path k takes rows `[start_k, end_k)` of the split layer's
  own tensors (a weight op's, a grouped conv's) and of the per-channel state (`bn`) of the ops
  after it in the layer; a path's `slice` has no tensors.
- `Group(node, count)`: every tensor moves with its node (renames only).
- `Several(edits)`: one carry per edit, in order; the `Carry` composes them (`compose_carries`);
  consecutive widenings share one compile (`_carry_widenings`).
- `Insert(parent, pos, op, args)`: the new op's tensors are fresh.
- `Graft(node, donor)`: a tensor whose key and shape survive keeps its values, new keys are
  fresh; `init` sets the donor's weights.

Any tensor whose shape an edit changed without saying how (a consumer behind a graft that changed
its width) keeps the overlapping block of its old values, the rest fresh.

A neuron of a weight op (a `linear` unit, a `conv` or `sepconv` filter) is indexed in more
tensors than its own row: the per-channel state of every op its channel passes through (`bn`),
and the input columns of every weight op that reads it (through `flatten` a channel is `H * W`
consecutive columns; after a `concat` it sits at an offset). `axes` finds all of them with the
data-flow walk (`growdsl.ir.dataflow.reach`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from growdsl.compile import compile_graph
from growdsl.grow.net import Net, rebuild
from growdsl.ir.dataflow import DataFlow, Reach
from growdsl.ir.edits import (
    Edit,
    Renames,
    Several,
    Widen,
    Wrap,
    apply_edit,
    compose_renames,
    concat_split,
)
from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import OPS, WEIGHT_OPS, Widening
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
    if reach.slices:
        where = reach.slices[0]
        verb = "sliced" if graph[where]["op"] == "slice" else "zero-padded"
        return f"{node}'s channels are {verb} at {where} (fixed bounds)"
    if reach.mixers:
        mixer = reach.mixers[0]
        op = graph[mixer]["op"]
        return f"{node}'s channels are mixed by {op} at {mixer}, which a new channel would change"
    for c in reach.consumers:
        if graph[c.node]["op"] == "conv" and graph[c.node]["args"].get("groups", 1) != 1:
            return f"{node} feeds the grouped conv {c.node}"
    return None


def axes(graph, node: str, state: dict[str, torch.Tensor], reach: Reach | None = None) -> list[Axis]:
    """Every tensor axis indexed by `node`'s output channels (see the module docstring)."""
    reach = reach or DataFlow(graph).reach(node)
    found = [Axis(f"{node}.{name}", 0) for name in _widening(graph, node).rows if f"{node}.{name}" in state]
    for p in reach.passes:
        for name in _widening(graph, p.node).per_channel:
            if f"{p.node}.{name}" in state:
                found.append(Axis(f"{p.node}.{name}", 0, p.offset, p.spread, "pass"))
    for c in reach.consumers:
        widening = _widening(graph, c.node)
        for name in widening.per_input:
            found.append(Axis(f"{c.node}.{name}", 0, c.offset, c.spread, "pass"))
        for name in widening.columns:
            found.append(Axis(f"{c.node}.{name}", 1, c.offset, c.spread, "consumer"))
    return found


def _widening(graph, node: str) -> Widening:
    """Which of op `node`'s tensors its channels index (the op table's `Widening`)."""
    return OPS[graph[node]["op"]].widening


def incoming_keys(graph, node: str) -> tuple[str, str | None]:
    """The state-dict keys of `node`'s incoming weights and bias: those of its neuron layer (a
    sepconv's pointwise conv), the bias when the op has one."""
    widening = _widening(graph, node)
    prefix = f"{widening.neurons}." if widening.neurons else ""
    bias = graph[node]["args"].get("bias", True) and f"{prefix}bias" in widening.rows
    return f"{node}.{prefix}weight", (f"{node}.{prefix}bias" if bias else None)


def _new_to_old(axis: Axis, size: int, width: int, sources: tuple[int | None, ...]) -> torch.Tensor:
    """Indices into the old axis for every entry of the new one; -1 marks a fresh entry."""
    end = axis.offset + width * axis.spread  # the new channels go right after the old ones
    added: list[int] = []
    for src in sources:
        start = None if src is None else axis.offset + src * axis.spread
        added.extend([-1] * axis.spread if start is None else range(start, start + axis.spread))
    # the kept runs as aranges: one list of every index made a tensor costs more than the carry's rest
    kept = torch.arange(size, dtype=torch.long)
    return torch.cat([kept[:end], torch.tensor(added, dtype=torch.long), kept[end:]])


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


def scale_outgoing(net: Net, node: str, neuron: int, factor: float) -> None:
    """Multiply neuron `neuron`'s input columns in every consumer of `node` by `factor`, in place
    (a split gives each offspring half: `factor = 0.5`)."""
    scale_outgoing_columns(net, node, {neuron: factor})


def scale_outgoing_columns(net: Net, node: str, factors: dict[int, float]) -> None:
    """`scale_outgoing` of several neurons (`{neuron: factor}`) at once: the consumers are found
    once and each is multiplied once (a step that splits dozens of neurons would otherwise find
    them dozens of times)."""
    state = net.model.state_dict()
    width = net.graph[node]["args"]["out"]
    share = torch.ones(width, dtype=torch.float64)
    for neuron, factor in factors.items():
        share[neuron] = factor
    with torch.no_grad():
        for axis in axes(net.graph, node, state):
            if axis.role == "consumer":
                cols = state[axis.key].narrow(axis.dim, axis.offset, width * axis.spread)
                shape = [-1 if d == axis.dim else 1 for d in range(cols.dim())]
                cols.mul_(share.repeat_interleave(axis.spread).to(cols).view(shape))


# ---------------------------------------------------------------- the carry


@dataclass(frozen=True)
class Source:
    """Where a tensor of the new net comes from: the old net's `key`, re-indexed along `dim` by
    `new_to_old` (-1 marks a fresh entry, filled with `fresh`) when `dim` is given; else taken
    whole, or its overlapping block when the shapes differ."""

    key: str
    dim: int | None = None
    new_to_old: torch.Tensor | None = None
    fresh: float = 0.0


@dataclass
class Carry:
    """What `carry` did: the edit, the node ids that moved (old -> new), where each tensor of the
    new net came from (a key absent from `sources` is fresh), the new tensors' shapes, and for a
    `Widen` the indices of the added neurons in the order of `edit.added`."""

    edit: Edit
    renames: Renames
    sources: dict[str, Source]
    shapes: dict[str, torch.Size]
    new_neurons: tuple[int, ...] = ()


Init = Callable[[Net, Carry], None]


@dataclass(frozen=True)
class Overwrite:
    """An `Init` that sets every tensor the edit adds, in full (an identity layer, a learned new
    layer): the carry then draws no fresh values for them (compiling the whole net under a seed,
    most of a small net's carry) but still takes the seed from its generator, so every later draw
    is the same as with `init` itself. The carry fills those tensors with NaN (integer buffers
    with 0, torch's fresh value for a step count) and raises if `init` leaves a NaN."""

    init: Init

    def __call__(self, net: Net, done: Carry) -> None:
        self.init(net, done)


def carry(
    net: Net, edit: Edit, init: Init | None = None, generator: torch.Generator | None = None
) -> tuple[Net, Carry]:
    """The net after `edit`, its weights carried over (see the module docstring), and what was
    done. `init(new_net, carry)` then sets, in place and without gradients, the values of what the
    edit added. Fresh tensors take torch's default initialisation drawn from `generator` (a fixed
    seed when None), never from the global generator. The old net is untouched."""
    if isinstance(edit, Several):
        return _carry_several(net, edit, init, generator)
    graph, renames = apply_edit(net.graph, edit)
    old = net.model.state_dict()
    with torch.device("meta"):
        skeleton = compile_graph(graph)
    meta = skeleton.state_dict()
    shapes = {k: v.shape for k, v in meta.items()}
    sources = _sources(net.graph, graph, edit, renames, old, skeleton)
    fresh_keys = [
        k
        for k in shapes
        if k not in sources or (sources[k].dim is None and old[sources[k].key].shape != shapes[k])
    ]
    if not fresh_keys:
        fresh = {}
    elif isinstance(init, Overwrite):
        _fresh_seed(generator)  # drawn all the same, so the generator's later draws do not move
        like = next(iter(old.values()))
        fresh = {k: _unset(meta[k], like) for k in fresh_keys}
    else:
        fresh = fresh_tensors(graph, fresh_keys, generator, net)
    state = {k: _carried(k, sources.get(k), old, shapes[k], fresh) for k in shapes}
    grown = rebuild(graph, state, net.model.training, skeleton)
    added: tuple[int, ...] = ()
    if isinstance(edit, Widen):
        width = net.graph[edit.node]["args"]["out"]
        added = tuple(range(width, width + len(edit.added)))
    done = Carry(edit, renames, sources, shapes, added)
    if init is not None:
        with torch.no_grad():
            init(grown, done)
    if isinstance(init, Overwrite):
        state = grown.model.state_dict()
        unset = [k for k in fresh_keys if state[k].is_floating_point() and bool(state[k].isnan().any())]
        if unset:
            raise RuntimeError(f"an Overwrite init left {', '.join(unset)} unset")
    return grown, done


def _carry_several(
    net: Net, edit: Several, init: Init | None, generator: torch.Generator | None
) -> tuple[Net, Carry]:
    """`carry` of each part in turn; `init` runs once, on the last net, with the composed carry.
    Consecutive widenings are carried together (`_carry_widenings`): one compile, not one each."""
    done: Carry | None = None
    for widening, run in groupby(edit.edits, key=lambda part: isinstance(part, Widen)):
        parts = list(run)
        batches = [parts] if widening else [[part] for part in parts]
        for batch in batches:
            net, step = _carry_widenings(net, batch) if widening else carry(net, batch[0], None, generator)
            done = step if done is None else compose_carries(done, step)
    done = Carry(edit, done.renames, done.sources, done.shapes)
    if init is not None:
        with torch.no_grad():
            init(net, done)
    return net, done


def _carry_widenings(net: Net, edits: list[Widen]) -> tuple[Net, Carry]:
    """`carry` of widenings in turn, composed, compiling only the last graph: a widening adds and
    removes no tensor, it only re-indexes some (`_widen_sources`), so the tensors between two of
    them need no module; the values are those of one carry per widening."""
    graph, state, done = net.graph, net.model.state_dict(), None
    for edit in edits:
        width = graph[edit.node]["args"]["out"]
        sources = {k: Source(k) for k in state} | _widen_sources(graph, edit, state)
        graph, renames = apply_edit(graph, edit)
        state = {k: _carried(k, s, state, state[k].shape, {}) for k, s in sources.items()}
        added = tuple(range(width, width + len(edit.added)))
        step = Carry(edit, renames, sources, {k: v.shape for k, v in state.items()}, added)
        done = step if done is None else compose_carries(done, step)
    with torch.device("meta"):
        skeleton = compile_graph(graph)
    return rebuild(graph, state, net.model.training, skeleton), done


def compose_carries(first: Carry, then: Carry) -> Carry:
    """Two carries in a row as one, from the tensors before `first` to those after `then`: a
    tensor fresh in either is fresh; index maps compose (an entry fresh in either is fresh)."""
    sources = {}
    for key, late in then.sources.items():
        early = first.sources.get(late.key)
        if early is None:
            continue
        if late.dim is None:
            sources[key] = early
        elif early.dim is None:
            sources[key] = Source(early.key, late.dim, late.new_to_old, late.fresh)
        elif early.dim == late.dim:
            inner = early.new_to_old[late.new_to_old.clamp(min=0)]
            sources[key] = Source(early.key, late.dim, inner.masked_fill(late.new_to_old < 0, -1), late.fresh)
    renames = compose_renames(first.renames, then.renames)
    return Carry(then.edit, renames, sources, then.shapes, then.new_neurons)


def _sources(
    before: ArchGraph, graph: ArchGraph, edit: Edit, renames: Renames, old: dict[str, torch.Tensor], skeleton
) -> dict[str, Source]:
    """Where each tensor of the new net comes from (see the module docstring's table)."""
    back = {new: was for was, new in renames.items()}
    if isinstance(edit, Wrap) and edit.merge != "concat":
        for k in range(1, edit.paths):  # each copy reads the old subtree
            path = f"{edit.node}.{k}"
            back.update({n: edit.node + n[len(path) :] for n in graph.walk(path, live_only=False)})
    sources: dict[str, Source] = {}
    for node in graph.ops():
        was = back.get(node, node)
        for name in skeleton.module_at(node).state_dict():
            if f"{was}.{name}" in old:
                sources[f"{node}.{name}"] = Source(f"{was}.{name}")
    if isinstance(edit, Widen):
        sources.update(_widen_sources(before, edit, old))
    elif isinstance(edit, Wrap) and edit.merge == "concat":
        sources.update(_concat_sources(before, graph, edit, skeleton))
    return sources


def _widen_sources(graph: ArchGraph, edit: Widen, old: dict[str, torch.Tensor]) -> dict[str, Source]:
    """Every tensor axis `edit.node`'s channels index, re-indexed for the added neurons."""
    flow = DataFlow(graph)
    blocker = widen_blocker(graph, edit.node, flow)
    if blocker is not None:
        raise ValueError(f"cannot widen: {blocker}")
    width = graph[edit.node]["args"]["out"]
    found = {}
    for axis in axes(graph, edit.node, old, flow.reach(edit.node)):
        new_to_old = _new_to_old(axis, old[axis.key].shape[axis.dim], width, edit.added)
        found[axis.key] = Source(axis.key, axis.dim, new_to_old, _fresh_value(axis.key, graph))
    return found


def _concat_sources(before: ArchGraph, graph: ArchGraph, edit: Wrap, skeleton) -> dict[str, Source]:
    """`wrap concat`: path k's own rows are rows `[start_k, end_k)` of the split layer's output
    channels (`concat_split`), in the layer's own tensors and in the per-channel entries of the
    ops after it (a `bn`'s scale, shift and running statistics); a sepconv's depthwise filters
    (per input channel) and a bn's step count go to every path whole. When the paths split the
    input (an identity, a pool, a grouped conv: each behind its `slice`), a grouped conv's groups
    stay aligned, so path k's filters are exactly the rows of its output channels, each reading
    the same input channels of its group as before."""
    split = concat_split(before, edit.node, edit.paths)
    layer_rel = split.layer[len(edit.node) :]
    inner = ".1" if split.inputs else ""
    found, start = {}, 0
    for k, size in enumerate(split.sizes):
        rows = torch.arange(start, start + size)
        copy_root = f"{edit.node}.{k}{inner}"
        for node in graph.ops(copy_root):
            was = edit.node + node[len(copy_root) :]
            own_rows = ("pointwise.",) if graph[node]["op"] == "sepconv" else ("",)
            for name, value in skeleton.module_at(node).state_dict().items():
                per_channel = value.dim() > 0 and (name.startswith(own_rows) or node != copy_root + layer_rel)
                sliced = per_channel and not name.startswith("depthwise.")
                found[f"{node}.{name}"] = (
                    Source(f"{was}.{name}", 0, rows) if sliced else Source(f"{was}.{name}")
                )
        start += size
    return found


def _carried(
    key: str, source: Source | None, old: dict[str, torch.Tensor], shape: torch.Size, fresh: dict
) -> torch.Tensor:
    if source is None:
        return fresh[key]
    value = old[source.key]
    if source.dim is not None:
        out = gather(value, source.dim, source.new_to_old, source.fresh)
        return _fresh_depthwise(out, source.new_to_old) if key.endswith(".depthwise.weight") else out
    return value if value.shape == shape else _overlap(value, fresh[key])


def _overlap(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """`new` with the block it shares with `old` (the leading entries of every dimension) taken
    from `old`; a tensor of another rank stays `new`."""
    out = new.clone()
    if old.dim() == new.dim():
        block = tuple(slice(0, min(a, b)) for a, b in zip(old.shape, new.shape, strict=True))
        out[block] = old[block].to(out)
    return out


def fresh_tensors(
    graph: ArchGraph, keys: list[str], generator: torch.Generator | None, like: Net
) -> dict[str, torch.Tensor]:
    """torch's default initialisation of `keys` in `graph`'s net, drawn from `generator` alone:
    one seed from it, the module built under a forked global generator."""
    seed = _fresh_seed(generator)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = compile_graph(graph).state_dict()
    param = next(iter(like.model.state_dict().values()))
    return {
        k: state[k].to(param.device, param.dtype)
        if state[k].is_floating_point()
        else state[k].to(param.device)
        for k in keys
    }


def _fresh_seed(generator: torch.Generator | None) -> int:
    """The one draw a carry's fresh values take from `generator` (a fixed seed when None)."""
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    return int(torch.randint(0, 2**62, (1,), generator=generator))


def _unset(meta: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A placeholder for a tensor an `Overwrite` init sets, on `like`'s device (and in its dtype
    when floating, as `fresh_tensors` gives): NaN, or 0 for an integer buffer."""
    if meta.is_floating_point():
        return torch.full(meta.shape, float("nan"), dtype=like.dtype, device=like.device)
    return torch.zeros(meta.shape, dtype=meta.dtype, device=like.device)


def carry_optimizer_state(named: dict[str, dict[str, Any]], done: Carry) -> dict[str, dict[str, Any]]:
    """Per-parameter optimizer state (momentum, Adam moments), keyed by parameter name, carried
    like the weights: a renamed parameter's state moves with it, a copy's is its source's, a fresh
    entry's is zero; a parameter whose shape changed without an index map (behind a graft) and a
    brand-new one start without state: state is kept only where it has a meaning."""
    out = {}
    for key, source in done.sources.items():
        state = named.get(source.key)
        if state is None:
            continue
        carried = {name: _carried_state(v, source, done.shapes[key]) for name, v in state.items()}
        if all(v is not None for v in carried.values()):
            out[key] = carried
    return out


def _carried_state(value: Any, source: Source, shape: torch.Size) -> Any:
    """One entry of a parameter's state carried, or None where it cannot be."""
    if not torch.is_tensor(value) or value.dim() == 0:
        return value  # a step count
    if source.dim is not None and value.dim() > source.dim:
        return gather(value, source.dim, source.new_to_old, 0.0)
    return value if value.shape == shape else None
