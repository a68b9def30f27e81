"""The augmented network of a firefly step: every candidate of the step in one net, each behind a
gate, so one forward and backward pass scores them all (docs/methods/firefly.md).

Built once per step from the current net with the shared carry: `deepen` appends each new-layer
candidate (a repeat copy that is the identity), then one carry of `Widen`s (one compile) gives
every target layer its candidate channels after the old ones: `N` fresh neurons, then the `S` split
sources twice (the `+` copies, then the `−` copies). The gates enter as a reparametrisation of
the weights (the net is run with `torch.func.functional_call`), with ε the step size and `a` a
neuron's outgoing column:

- new neuron j: incoming row `θ_j` (learned), outgoing columns `g_j · A_j` (`A_j` learned);
  applied at `g_j = ε`;
- split of neuron i: rows `θ_i ± u_i` (`u_i` learned at full scale, as the authors do), columns
  `(1 − g) a_i` for the neuron and `½ g a_i` for each copy, i.e.
  `σ(θᵀh) a + g [½σ((θ+u)ᵀh) + ½σ((θ−u)ᵀh) − σ(θᵀh)] a`; applied at `g = 1`, which is the
  authors' split: the neuron replaced by its two offspring `θ ± u` with half its outgoing weight
  each (one neuron added). Its score `−∂L/∂g` is, like a new neuron's `−ε ∂L/∂g`, the first-order
  loss decrease of the change as applied;
- new layer: each of its tensors is `W_id + g · D` (`W_id` the identity initialisation, `D`
  learned); applied at `g = ε`.

At `g = 0` the augmented net computes exactly the current net's function, and `∂L/∂g` of a
candidate there involves only that candidate (its channels reach the loss through its own gate),
so the Taylor scores of all candidates come from one backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from growdsl.grow import collective
from growdsl.grow.deepen import NotIdentity, deepen
from growdsl.grow.net import Net
from growdsl.grow.surgery import Axis, axes, carry, incoming_keys
from growdsl.ir.dataflow import DataFlow
from growdsl.ir.edits import Several, Widen
from growdsl.lazy import torch

# The gates' value when scoring (see `Augmented.scores`): small enough that the function moves by
# 1e-20 of itself, 13 orders under float32's resolution, and large enough that its products with
# activations, weights and gradients stay normal floats (float32's smallest is 1.2e-38). At 1e-30
# they underflowed to denormals, which CPUs compute many times slower: the scoring pass took 3-4
# times as long (docs/benchmarks.md, "Cost of a step against an epoch"); the scores are the same.
_ZERO_PLUS = 1e-20
_SPLIT_INIT = 0.1  # bound of the uniform start of split directions (the authors' U(±0.1))
_SPLIT_GATE = 1.0  # a split is applied whole (the authors'): its gate's applied value


@dataclass
class LayerCandidates:
    """A target layer's candidates in the augmented net: its old `width`, `new` fresh neurons
    and the split `sources`; gates `gate` to `gate + new + len(sources)`."""

    node: str
    width: int
    new: int
    sources: list[int]
    gate: int = 0
    weight_key: str = ""
    bias_key: str | None = None
    consumers: list[Axis] = field(default_factory=list)
    original_columns: torch.Tensor | None = None  # the row's input columns that exist now
    source_index: torch.Tensor | None = None  # `sources` as a tensor on the net's device

    @property
    def added(self) -> int:
        return self.new + 2 * len(self.sources)


@dataclass
class BlockCandidate:
    """A new-layer candidate: the copy `node` appended to repeat `seq`; gate `gate`."""

    seq: str
    node: str
    gate: int
    keys: list[str] = field(default_factory=list)


@dataclass
class Augmented:
    """The augmented net, its learned candidate tensors and the layout of its gates."""

    net: Net
    base: dict[str, torch.Tensor]  # the augmented net's parameters (buffers stay in the module)
    eps: float
    layers: list[LayerCandidates]
    blocks: list[BlockCandidate]
    flat: torch.Tensor  # every learned candidate tensor, flattened one after another (a leaf)
    layout: list[tuple[str, torch.Size]]  # their names and shapes in that order, split directions last
    scales: torch.Tensor  # each gate's value when its candidate is applied
    # per consumer tensor: the dimension of its input columns and, in column order, the widened
    # layers (index into `layers`) whose channels it reads, with the axis they index
    consumed: dict[str, tuple[int, list[tuple[int, Axis]]]] = field(init=False)
    applied_columns: dict[str, torch.Tensor] = field(init=False)  # `_column_factors()`
    head_weights: torch.Tensor = field(init=False)  # penalty weights of `flat`'s head (`_views`)

    def __post_init__(self) -> None:
        head = [(name, shape) for name, shape in self.layout if not _split_direction(name)]
        self.head_weights = torch.cat(
            [
                torch.full((shape.numel(),), _penalty_weight(name), dtype=self.flat.dtype)
                for name, shape in head
            ]
        ).to(self.flat.device)
        self.consumed = {}
        for i, layer in enumerate(self.layers):
            for axis in layer.consumers:
                self.consumed.setdefault(axis.key, (axis.dim, []))[1].append((i, axis))
        for _, segments in self.consumed.values():
            segments.sort(key=lambda segment: segment[1].offset)
        self.applied_columns = self._column_factors()

    @property
    def learned(self) -> dict[str, torch.Tensor]:
        """The learned tensors by name: views of `flat` (see `_views`)."""
        return self._views()[1]

    def _views(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`flat`'s head (every learned tensor but the split directions, which come last) and the
        learned tensors by name, as views: two splits, each one node for autograd whose backward
        writes its gradients into one tensor, so one optimizer update covers them all."""
        sizes = [shape.numel() for _, shape in self.layout]
        cut = len(self.head_weights)
        tail = [n for n, (name, _) in zip(sizes, self.layout, strict=True) if _split_direction(name)]
        head, *directions = self.flat.split([cut, *tail])
        parts = [*head.split(sizes[: len(sizes) - len(tail)]), *directions]
        return head, {name: part.view(shape) for (name, shape), part in zip(self.layout, parts, strict=True)}

    @property
    def gates(self) -> int:
        return self.scales.numel()

    # ------------------------------------------------------------ the reparametrisation

    def parameters(
        self, gates: torch.Tensor | None = None, learned: dict[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """The augmented net's parameters as functions of the gates and the learned tensors
        (`learned`, views of `flat`; taken anew when not given).

        `gates` None (stage 1): every gate at its applied value, a constant, so each consumer's
        columns are one product with factors computed once per step (`applied_columns`) instead
        of one product per piece per mini-batch; the values are the same, bit for bit. The
        scoring pass differentiates by the gates, which then enter piece by piece."""
        eff, learned = dict(self.base), learned or self.learned
        for i, layer in enumerate(self.layers):
            _rows(eff, layer, learned, i)
        if gates is None:
            for key, (dim, segments) in self.consumed.items():
                eff[key] = _columns(eff[key], dim, segments, self.layers, learned) * self.applied_columns[key]
        else:
            for i, layer in enumerate(self.layers):
                g = gates[layer.gate : layer.gate + layer.new + len(layer.sources)]
                for axis in layer.consumers:
                    outgoing = learned[f"{i}.out.{axis.key}"]
                    eff[axis.key] = _gated_columns(eff[axis.key], axis, layer, g, outgoing)
        gates = self.scales if gates is None else gates
        for block in self.blocks:
            for key in block.keys:
                eff[key] = self.base[key] + gates[block.gate] * learned[f"b{block.gate}.{key}"]
        return eff

    def _column_factors(self) -> dict[str, torch.Tensor]:
        """Per consumer tensor, the factor of each input column with every gate at its applied
        value, shaped to broadcast: the gated columns (`_gated_columns`) of a tensor of ones."""
        out, learned = {}, self.learned
        for key, (_, segments) in self.consumed.items():
            ones = torch.ones_like(self.base[key].narrow(0, 0, 1))  # one row: every row is the same
            for i, axis in segments:
                layer = self.layers[i]
                g = self.scales[layer.gate : layer.gate + layer.new + len(layer.sources)]
                outgoing = torch.ones_like(learned[f"{i}.out.{axis.key}"].narrow(0, 0, 1))
                ones = _gated_columns(ones, axis, layer, g, outgoing)
            out[key] = ones
        return out

    def loss(
        self, gates: torch.Tensor | None, x: torch.Tensor, y: torch.Tensor, loss_fn, learned=None
    ) -> torch.Tensor:
        params = self.parameters(gates, learned)
        return loss_fn(torch.func.functional_call(self.net.model, params, (x,)), y)

    def objective(self, x: torch.Tensor, y: torch.Tensor, loss_fn, weight: float = 1.0) -> torch.Tensor:
        """Stage 1's objective: the loss with every gate at its applied value, plus the penalty,
        from one set of views of `flat` (`_views`). On a rank of a distributed run, `(x, y)` are
        its rows of the mini-batch and `weight` their share (growdsl/grow/collective.py): its
        part of the loss and of the penalty, which summed over the ranks give the objective."""
        head, learned = self._views()
        loss = collective.part_of_mean(self.loss(None, x, y, loss_fn, learned), weight)
        penalty = self.penalty(head, learned)
        return loss + (penalty if weight == 1.0 else penalty / collective.ranks())

    def penalty(self, head: torch.Tensor, learned: dict[str, torch.Tensor]) -> torch.Tensor:
        """The authors' `1e-2 (‖δ‖² + 1e-2 ‖θ_new‖²)`: δ (splits' `u`, new layers' `D`) and θ_new
        (new neurons' rows and outgoing columns); `head` and `learned` from one `_views()`.

        Over the head at once, each split direction alone. Every gradient is the same, bit for
        bit, as with one term per learned tensor, each its own leaf: a head entry's gradient has
        two terms (its one use and the penalty), which add up the same in either order; a split
        direction's has three (`θ + u`, `θ − u`, the penalty), and adding them in another order
        (the penalty over all of `flat` would add it last) rounds differently."""
        total = (head.pow(2) * self.head_weights).sum()
        for name, value in learned.items():
            if _split_direction(name):
                total = total + _penalty_weight(name) * value.pow(2).sum()
        return 1e-2 * total

    def scores(self, x: torch.Tensor, y: torch.Tensor, loss_fn) -> torch.Tensor:
        """First-order predicted loss decrease of every candidate: `−scale · ∂L/∂g` at `g = 0⁺`.

        The gates sit at a tiny positive value rather than 0: a new layer that is the identity on
        a ReLU output puts its own ReLU exactly at its kink for every zero input, and there only
        the right derivative (the side `g = ε` moves to) predicts the step; autograd's
        `relu'(0) = 0` would drop it. The function moves by 1e-20 of itself (`_ZERO_PLUS`)."""
        gates = torch.full_like(self.scales, _ZERO_PLUS).requires_grad_(True)
        x, y, weight = collective.my_rows(x, y)  # a distributed run's ranks share the batch
        loss = collective.part_of_mean(self.loss(gates, x, y, loss_fn), weight)
        (grad,) = torch.autograd.grad(loss, gates)
        return -self.scales * collective.all_sum(grad)


def _penalty_weight(name: str) -> float:
    """A learned tensor's weight in the penalty: 1 for a direction δ (`u`, `ub`, a new layer's
    `D`), 1e-2 for a new neuron's θ (rows and outgoing columns)."""
    kind = name.split(".")[1] if not name.startswith("b") else "delta"
    return 1.0 if kind in ("u", "ub", "delta") else 1e-2


def _split_direction(name: str) -> bool:
    """Whether learned tensor `name` is a split's direction (`u`, `ub`), which `_rows` uses twice."""
    return name.split(".")[1] in ("u", "ub")


def _rows(eff, layer: LayerCandidates, learned, i: int) -> None:
    w, n, s = layer.width, layer.new, len(layer.sources)
    for key, suffix in ((layer.weight_key, ""), (layer.bias_key, "b")):
        if key is None:
            continue
        base = eff[key]
        delta = learned[f"{i}.u{suffix}"]
        eff[key] = torch.cat(
            [
                base[:w],
                learned[f"{i}.theta{suffix}"],
                base[w + n : w + n + s] + delta,
                base[w + n + s :] - delta,
            ]
        )


def _columns(weight, dim: int, segments, layers: list[LayerCandidates], learned) -> torch.Tensor:
    """A consumer's tensor with each widened layer's new-neuron columns replaced by their learned
    outgoing weights, before the column factors (see the module docstring): one concatenation.
    The kept columns come from one `split` (one backward that writes each gradient once, where a
    narrow per piece would fill a zero tensor of the whole weight per piece)."""
    sizes, outgoing, pos = [], [], 0
    for i, axis in segments:
        start = axis.offset + layers[i].width * axis.spread
        sizes += [start - pos, layers[i].new * axis.spread]
        outgoing.append(learned[f"{i}.out.{axis.key}"])
        pos = start + sizes[-1]
    sizes.append(weight.shape[dim] - pos)
    kept = weight.split(sizes, dim)[0::2]
    pieces = [kept[0]] + [p for pair in zip(outgoing, kept[1:], strict=True) for p in pair]
    return torch.cat([p for p in pieces if p.shape[dim]], dim)


def _gated_columns(weight, axis: Axis, layer: LayerCandidates, g: torch.Tensor, outgoing) -> torch.Tensor:
    """A consumer's input columns for `layer`'s channels, gated (see the module docstring)."""
    w, n, s, spread = layer.width, layer.new, len(layer.sources), axis.spread
    dim, start = axis.dim, axis.offset
    g_new, g_split = g[:n], g[n:]
    shape = [-1 if d == dim else 1 for d in range(weight.dim())]
    keep = torch.ones(w, dtype=g.dtype, device=g.device)
    if s:
        keep = keep.index_add(0, layer.source_index, -g_split)
    old = weight.narrow(dim, start, w * spread) * keep.repeat_interleave(spread).view(shape)
    new = outgoing * g_new.repeat_interleave(spread).view(shape)
    half = (0.5 * g_split).repeat_interleave(spread).view(shape)
    plus = weight.narrow(dim, start + (w + n) * spread, s * spread) * half
    minus = weight.narrow(dim, start + (w + n + s) * spread, s * spread) * half
    end = start + (w + layer.added) * spread
    rest = weight.narrow(dim, end, weight.shape[dim] - end)
    return torch.cat([weight.narrow(dim, 0, start), old, new, plus, minus, rest], dim)


# ---------------------------------------------------------------- building


def augment(
    net: Net,
    plans: list[tuple[str, int, list[int]]],
    repeats: list[tuple[str, int]],
    x: torch.Tensor,
    eps: float,
    rng: torch.Generator,
) -> Augmented:
    """The augmented net for `plans` (`(layer, new neurons, split sources)`) and `repeats`
    (`(seq, new copies)`); `x` a sample of inputs (the new layers' BN statistics)."""
    blocks: list[BlockCandidate] = []
    for seq, copies in repeats:
        for _ in range(copies):
            try:
                deeper = deepen(net, seq, x, rng)
            except NotIdentity:  # this body cannot start as the identity: no candidate
                break
            net = deeper.net
            blocks.append(BlockCandidate(seq, deeper.node, 0))
    original = {node: net.graph[node]["args"]["out"] for node, _, _ in plans}
    layers = [LayerCandidates(node, original[node], new, list(sources)) for node, new, sources in plans]
    if plans:  # one carry for all the widenings (one compile)
        net, _ = carry(net, Several(tuple(Widen(n, (None,) * new + tuple(s) * 2) for n, new, s in plans)))
    state = {k: v.detach() for k, v in net.model.state_dict().items()}
    flow = DataFlow(net.graph)
    gate, learned, scales = 0, {}, []
    dtype, device = next(iter(state.values())).dtype, net.device
    for i, layer in enumerate(layers):
        layer.gate = gate
        gate += layer.new + len(layer.sources)
        scales += [eps] * layer.new + [_SPLIT_GATE] * len(layer.sources)
        layer.weight_key, layer.bias_key = incoming_keys(net.graph, layer.node)
        layer.source_index = torch.tensor(layer.sources, dtype=torch.long, device=device)
        layer.consumers = [
            a for a in axes(net.graph, layer.node, state, flow.reach(layer.node)) if a.role == "consumer"
        ]
        weight = state[layer.weight_key]
        fan = weight[0].numel()
        learned[f"{i}.theta"] = _uniform(rng, (layer.new, *weight.shape[1:]), _default_bound(fan), weight)
        # split directions start as the authors' U(±0.1) per entry, at full scale
        learned[f"{i}.u"] = _uniform(rng, (len(layer.sources), *weight.shape[1:]), _SPLIT_INIT, weight)
        if layer.bias_key is not None:
            learned[f"{i}.thetab"] = _uniform(rng, (layer.new,), _default_bound(fan), weight)
            learned[f"{i}.ub"] = _uniform(rng, (len(layer.sources),), _SPLIT_INIT, weight)
        for axis in layer.consumers:
            cons = state[axis.key]
            shape = list(cons.shape)
            shape[axis.dim] = layer.new * axis.spread
            fan_out = cons.shape[1] if cons.dim() else 1
            learned[f"{i}.out.{axis.key}"] = _uniform(rng, tuple(shape), _default_bound(fan_out), cons)
    for layer in layers:
        layer.original_columns = _original_columns(state[layer.weight_key].shape[1], layer.node, layers, flow)
    for block in blocks:
        block.gate = gate
        gate += 1
        scales.append(eps)
        block.keys = [k for k, _ in net.model.named_parameters() if k.startswith(block.node + ".")]
        for key in block.keys:
            t = state[key]
            learned[f"b{block.gate}.{key}"] = _normal(
                rng, tuple(t.shape), t[0].numel() if t.dim() > 1 else 1, t
            )
    order = sorted(learned, key=_split_direction)  # stable: the split directions last
    flat = torch.cat([learned[name].reshape(-1) for name in order]).requires_grad_(True)
    layout = [(name, learned[name].shape) for name in order]
    net.model.eval()
    base = {k: state[k] for k, _ in net.model.named_parameters()}
    scales = torch.tensor(scales, dtype=dtype, device=device)
    return Augmented(net, base, eps, layers, blocks, flat, layout, scales)


def _original_columns(fan_in: int, node: str, layers: list[LayerCandidates], flow: DataFlow) -> torch.Tensor:
    """Indices of `node`'s input columns that are not candidate channels of another layer."""
    keep = torch.ones(fan_in, dtype=torch.bool)
    for layer in layers:
        for c in flow.reach(layer.node).consumers:
            if c.node == node:
                start = c.offset + layer.width * c.spread
                keep[start : start + layer.added * c.spread] = False
    return keep.nonzero().flatten()


def _default_bound(fan: int) -> float:
    """torch's default layer initialisation is U(±1/√fan)."""
    return 1.0 / max(fan, 1) ** 0.5


def _uniform(rng: torch.Generator, shape: tuple[int, ...], bound: float, like: torch.Tensor) -> torch.Tensor:
    """U(±bound), drawn from `rng`."""
    return ((torch.rand(shape, generator=rng, dtype=torch.float64) * 2 - 1) * bound).to(like)


def _normal(rng: torch.Generator, shape: tuple[int, ...], fan: int, like: torch.Tensor) -> torch.Tensor:
    return (torch.randn(shape, generator=rng, dtype=torch.float64) / max(fan, 1) ** 0.5).to(like)
