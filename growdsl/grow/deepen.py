"""Weight surgery for depth: insert a layer (a new copy of a growable repeat's body) that computes
the identity, so the network's function is unchanged at insertion (docs/methods/firefly.md).

How a body becomes the identity, op by op along its data flow:

- `linear` with as many outputs as inputs: `W = I`, `b = 0`; `conv` (groups 1, stride 1, odd k,
  same padding) and `sepconv`: the Dirac kernel, 1 at the centre of the channel's own filter.
- `bn`: the identity *from the statistics of its input* (measured over a sample):
  `running_mean = β = mean`, `running_var = var`, `γ = sqrt(var + eps)`, exact in eval mode.
- `relu`, and max or average pooling with k = 1, are the identity on a non-negative input: the
  block's input is non-negative when the op before it is a `relu` or a `sigmoid` (through pools,
  dropout and flatten).
- `branch add { path | identity }`: the identity path carries the input; every other path is
  made to output zero by zeroing its last `bn` (γ = β = 0) or, without one, its last weight op,
  while the ops before keep a fresh random initialisation (so the path can learn at once);
  `branch mean` of identity paths is the identity.
- `identity`, `dropout` (eval mode) are the identity; anything else (`tanh`, `flatten`, a
  strided conv, a width change) is not, and `NotIdentity` says why.

`deepen` is the whole step for a growable repeat (an `AppendCopy` edit through the shared carry,
with the identity as its init, `identity_init` of an `IdentityCopy`, the data net2deeper's
candidates carry);
`identity_values` the rule set, for any transform that inserts a
block (path-level transforms will reuse it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from growdsl.grow.net import Net
from growdsl.grow.surgery import Carry, Init, Overwrite, carry
from growdsl.grow.wire import sendable
from growdsl.ir.dataflow import DataFlow
from growdsl.ir.edits import AppendCopy
from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import WEIGHT_OPS
from growdsl.ir.shapes import infer_shapes
from growdsl.lazy import torch

_NONNEG_KEEPERS = ("maxpool", "avgpool", "dropout", "identity", "flatten", "gap")


class NotIdentity(Exception):
    """Why a block cannot be initialised to compute the identity; carried as data."""


@sendable
@dataclass(frozen=True)
class InputStats:
    """Per-channel statistics of a block's input (dimension 1 of a batch), and whether the input
    is non-negative by construction (the op before it is a relu or a sigmoid). `mean` and `var`
    are None when not measured (only a `bn` reads them; measuring takes a forward pass), and then
    `channels` gives the input's width."""

    mean: torch.Tensor | None
    var: torch.Tensor | None
    nonneg: bool
    channels: int = 0  # set from `mean` when measured

    def __post_init__(self) -> None:
        if self.mean is not None:
            object.__setattr__(self, "channels", self.mean.numel())


@dataclass
class Deepening:
    """The result of `deepen`: the new net and the id of the inserted copy."""

    net: Net
    node: str


def nonneg_input(graph: ArchGraph, node: str, flow: DataFlow | None = None) -> bool:
    """Whether `node`'s input is non-negative whatever the data: every last op before it is a
    relu or a sigmoid, looking through pools, dropout, identity and flatten."""
    flow = flow or DataFlow(graph)
    before = flow.prev_op(node)
    if not before:
        return False
    for op in before:
        name = graph[op]["op"]
        if name in ("relu", "sigmoid"):
            continue
        if name not in _NONNEG_KEEPERS or not nonneg_input(graph, op, flow):
            return False
    return True


def measure_output(net: Net, node: str, x: torch.Tensor, nonneg: bool) -> InputStats:
    """Per-channel statistics of `node`'s output over the sample `x`, the net in eval mode (as
    it is when the function is compared); `nonneg` is what the graph says of the sign."""
    seen: list[torch.Tensor] = []
    module = net.model.module_at(node)
    handle = module.register_forward_hook(lambda _m, _args, out: seen.append(out.detach()))
    training = net.model.training
    net.model.eval()
    try:
        with torch.no_grad():
            net.model(x)
    finally:
        handle.remove()
        net.model.train(training)
    h = seen[0].transpose(0, 1).reshape(seen[0].shape[1], -1)
    return InputStats(h.mean(1), h.var(1), nonneg)


def identity_values(
    graph: ArchGraph, block: str, state: dict[str, torch.Tensor], stats: InputStats
) -> dict[str, torch.Tensor]:
    """New values for the parameters and buffers under `block` (of `state`, which holds a fresh
    initialisation for them) so that `block` computes the identity on inputs like `stats`'.
    Raises NotIdentity when the rules of the module docstring cannot make it so."""
    values: dict[str, torch.Tensor] = {}
    _identity(graph, block, state, stats, values)
    return values


def _identity(graph, node, state, stats: InputStats, values) -> None:
    kind = graph.kind(node)
    if kind == "op":
        _identity_op(graph, node, state, stats, values)
    elif kind == "branch":
        _identity_branch(graph, node, state, stats, values)
    else:  # a seq chains its children; a choice is its live path
        for child in graph.live_children(node):
            _identity(graph, child, state, stats, values)


def _identity_op(graph, node, state, stats: InputStats, values) -> None:
    attrs = graph[node]
    op, args = attrs["op"], attrs.get("args", {})
    channels = stats.channels
    if op in ("identity", "dropout"):
        return
    if op == "relu" and stats.nonneg:
        return
    if op in ("maxpool", "avgpool") and args.get("k") == 1 and args.get("stride") in (None, 1):
        if op == "avgpool" or stats.nonneg:
            return
    if op == "bn":
        if stats.mean is None:
            raise ValueError(f"{node}: a bn needs the measured statistics of its input")
        std = torch.sqrt(stats.var + _bn_eps())
        for key, value in (("running_mean", stats.mean), ("running_var", stats.var)):
            values[f"{node}.{key}"] = value.to(state[f"{node}.{key}"]).clone()
        values[f"{node}.weight"] = std.to(state[f"{node}.weight"])
        values[f"{node}.bias"] = stats.mean.to(state[f"{node}.bias"]).clone()
        if f"{node}.num_batches_tracked" in state:
            values[f"{node}.num_batches_tracked"] = torch.zeros_like(state[f"{node}.num_batches_tracked"])
        return
    if op in ("linear", "conv", "sepconv"):
        if args["out"] != channels:
            raise NotIdentity(f"{node} maps {channels} channels to {args['out']}")
        if op != "linear" and (args.get("stride", 1) != 1 or args.get("k", 3) % 2 == 0):
            raise NotIdentity(f"{node} is strided or has an even kernel")
        if op == "conv" and (args.get("groups", 1) != 1 or args.get("padding") not in (None, args["k"] // 2)):
            raise NotIdentity(f"{node} is grouped or not padded to keep its size")
        own = f"{node}.pointwise" if op == "sepconv" else node
        values[f"{own}.weight"] = _eye(state[f"{own}.weight"])
        if f"{own}.bias" in state:
            values[f"{own}.bias"] = torch.zeros_like(state[f"{own}.bias"])
        if op == "sepconv":
            values[f"{node}.depthwise.weight"] = _eye(state[f"{node}.depthwise.weight"], depthwise=True)
        return
    raise NotIdentity(f"{node} ({op}) is not the identity" + (" on a signed input" if op == "relu" else ""))


def _eye(weight: torch.Tensor, depthwise: bool = False) -> torch.Tensor:
    """The identity as a linear weight `[C, C]` or a Dirac conv kernel `[C, C or 1, k, k]`."""
    out = torch.zeros_like(weight)
    channels = torch.arange(weight.shape[0])
    if weight.dim() == 2:
        out[channels, channels] = 1.0
    else:
        k = weight.shape[-1]
        out[channels, 0 if depthwise else channels, k // 2, k // 2] = 1.0
    return out


def _bn_eps() -> float:
    return 1e-5  # torch.nn.BatchNorm's default, the one the compiler uses


def _identity_branch(graph, node, state, stats: InputStats, values) -> None:
    paths = graph.live_children(node)
    merge = graph[node]["merge"]
    if merge == "concat":
        raise NotIdentity(f"{node} concatenates its paths, changing the width")
    if merge == "mean":
        for path in paths:
            _identity(graph, path, state, stats, values)
        return
    # the carrier is the path with the fewest weights (an `identity` path); the others learn
    by_weights = sorted(paths, key=lambda p: sum(graph[o]["op"] in WEIGHT_OPS for o in graph.ops(p)))
    for carrier in by_weights:
        trial: dict[str, torch.Tensor] = {}
        try:
            _identity(graph, carrier, state, stats, trial)
        except NotIdentity:
            continue
        values.update(trial)
        for other in paths:
            if other != carrier:
                _zero_path(graph, other, state, values)
        return
    raise NotIdentity(f"no path of {node} can carry its input unchanged")


def _zero_path(graph, path: str, state, values) -> None:
    """Make `path` output zero: zero its last bn or weight op, if only zero-keeping ops follow."""
    for op in reversed(graph.ops(path)):
        name = graph[op]["op"]
        if name == "bn":
            values[f"{op}.weight"] = torch.zeros_like(state[f"{op}.weight"])
            values[f"{op}.bias"] = torch.zeros_like(state[f"{op}.bias"])
            return
        if name in ("linear", "conv", "sepconv"):
            own = f"{op}.pointwise" if name == "sepconv" else op
            for key in (f"{own}.weight", f"{own}.bias"):
                if key in state:
                    values[key] = torch.zeros_like(state[key])
            return
        if name not in ("relu", "gelu", "silu", "tanh", "identity", "dropout", "maxpool", "avgpool"):
            raise NotIdentity(f"{op} ({name}) does not map zero to zero")
    raise NotIdentity(f"{path} has no weight to zero")


@sendable
@dataclass(frozen=True)
class IdentityCopy:
    """What makes the copy `AppendCopy(seq)` appends compute the identity, as data (a growth
    decision crosses the ranks of a distributed run as data, growdsl/grow/wire.py): the statistics
    of its input, and whether a `branch add` in the body keeps fresh paths."""

    seq: str
    stats: InputStats
    keeps_fresh: bool


def identity_copy(net: Net, seq: str, x: torch.Tensor) -> IdentityCopy:
    """The `IdentityCopy` of repeat `seq` for inputs like the sample `x`'s (measured now, on `net`,
    where a bn needs them)."""
    # the copy is appended to the repeat, so its input is the repeat's output; only a bn reads
    # the input's statistics, so a body without one needs no forward pass (and draws nothing)
    graph = net.graph
    if any(graph[op]["op"] == "bn" for op in graph.ops(seq)):
        stats = measure_output(net, seq, x, nonneg=False)
    else:
        stats = InputStats(None, None, nonneg=False, channels=infer_shapes(graph)[seq].out[0])
    keeps_fresh = any(graph.kind(n) == "branch" and graph[n]["merge"] == "add" for n in graph.walk(seq))
    return IdentityCopy(seq, stats, keeps_fresh)


def identity_init(copy: IdentityCopy) -> Init:
    """The `init` that makes the appended copy compute the identity; it raises NotIdentity when
    the body cannot be the identity. An `Overwrite` unless a `branch add` keeps fresh paths (the
    identity then sets every tensor of the copy)."""

    def identity(grown: Net, _done: Carry) -> None:
        node = grown.graph.children(copy.seq)[-1]
        state = grown.model.state_dict()
        sign = dataclasses.replace(copy.stats, nonneg=nonneg_input(grown.graph, node))
        for key, value in identity_values(grown.graph, node, state, sign).items():
            state[key].copy_(value)

    return identity if copy.keeps_fresh else Overwrite(identity)


def deepen(net: Net, seq: str, x: torch.Tensor, generator: torch.Generator) -> Deepening:
    """Append a copy of growable repeat `seq`'s body that computes the identity on inputs like
    the sample `x`'s: the network's function is unchanged (exactly, in eval mode). Weights the
    rules leave free take a fresh initialisation drawn from `generator`, never from the global
    generator. The old net is untouched; NotIdentity says why a body cannot be the identity."""
    grown, _ = carry(net, AppendCopy(seq), identity_init(identity_copy(net, seq, x)), generator)
    return Deepening(grown, grown.graph.children(seq)[-1])
