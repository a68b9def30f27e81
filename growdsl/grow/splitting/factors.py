"""The data the splitting matrices are made of, collected in one forward and one backward pass.

For a split site `P -> [bn] -> σ` and neuron i of P (docs/methods/splitting.md):

    S_i = Σ_m w[m, i] · h[m] h[m]ᵀ,    w[m, i] = g[m, i] · σ''(u[m, i]) · c_i²

where `m` runs over samples (and, for a conv, over output positions too: a filter sees one patch
per position and the loss sums over them), `h[m]` is the neuron's input (a linear layer's input
row, a conv's unfolded patch, a sepconv's depthwise output at one position) with a 1 appended when
the layer has a bias (θ includes the bias), `u` is σ's input, `c = γ / sqrt(running_var + eps)` is
BN's per-channel factor (1 without BN) and `g = ∂L/∂(σ output)` of the mean loss, so the 1/N of
the expectation is already in `g`. Keeping `h` and `w` (not the D×D matrices) is what lets the
fast solver multiply by every S_i at once in O(M·D) per neuron.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from growdsl.grow import collective
from growdsl.grow.splitting.curvature import CURVATURES
from growdsl.grow.splitting.sites import SplitSite
from growdsl.ir.ops import OPS
from growdsl.lazy import F, nn, torch

if TYPE_CHECKING:
    from growdsl.compile import GrowNet

LossFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


@dataclass(frozen=True)
class SplitFactors:
    """The factors of one layer's splitting matrices: `S_i = hᵀ diag(w[:, i]) h`."""

    site: SplitSite
    h: torch.Tensor  # [M, D]: inputs (patches), a trailing 1 when the layer has a bias
    w: torch.Tensor  # [M, C]: g · σ''(u) · c², one column per neuron

    @property
    def neurons(self) -> int:
        return self.w.shape[1]

    @property
    def dim(self) -> int:
        return self.h.shape[1]


def neuron_layer(model: GrowNet, node: str) -> nn.Linear | nn.Conv2d:
    """The torch layer whose output rows are `node`'s neurons (a sepconv's pointwise half: the op
    table's `Widening.neurons`)."""
    neurons = OPS[model.graph[node]["op"]].widening.neurons
    module = model.module_at(node)
    return module.get_submodule(neurons) if neurons else module


def neuron_inputs(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The neuron inputs as rows [M, D], with a 1 appended for the bias."""
    if isinstance(layer, nn.Conv2d):
        patches = F.unfold(x, layer.kernel_size, layer.dilation, layer.padding, layer.stride)
        rows = patches.transpose(1, 2).reshape(-1, patches.shape[1])  # positions row-major, as u's
    else:
        rows = x.reshape(-1, x.shape[-1])
    if layer.bias is not None:
        rows = torch.cat([rows, rows.new_ones(rows.shape[0], 1)], dim=1)
    return rows


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N·H·W, C]; [N, C] (or [..., C] for a linear) -> [-1, C]."""
    if t.dim() == 4:
        return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])
    return t.reshape(-1, t.shape[-1])


def bn_factor(bn: nn.Module | None, channels: int, like: torch.Tensor) -> torch.Tensor:
    """BN's eval-mode slope per channel, c = γ / sqrt(running_var + eps); ones without BN."""
    if bn is None:
        return like.new_ones(channels)
    gamma = bn.weight if bn.weight is not None else like.new_ones(channels)
    return (gamma / torch.sqrt(bn.running_var + bn.eps)).detach().to(like.dtype)


def collect_factors(
    model: GrowNet, sites: Sequence[SplitSite], x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn
) -> list[SplitFactors]:
    """One forward (eval mode: BN frozen, no dropout) and one backward of `loss_fn(model(x), y)`,
    giving every site's factors at once. The model's mode is restored afterwards."""
    seen_inputs: dict[str, torch.Tensor] = {}
    seen_acts: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    for site in sites:
        layer = neuron_layer(model, site.node)
        handles.append(
            layer.register_forward_hook(
                lambda m, i, o, key=site.node: seen_inputs.__setitem__(key, i[0].detach())
            )
        )
        handles.append(
            model.module_at(site.act).register_forward_hook(
                lambda m, i, o, key=site.node: seen_acts.__setitem__(key, (i[0].detach(), o))
            )
        )
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            loss = loss_fn(model(x), y)
            outs = [seen_acts[s.node][1] for s in sites]
            grads = torch.autograd.grad(loss, outs, allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    factors = []
    for site, out, grad in zip(sites, outs, grads, strict=True):
        layer = neuron_layer(model, site.node)
        u = _channels_last(seen_acts[site.node][0])
        g = _channels_last(grad) if grad is not None else torch.zeros_like(out).reshape(u.shape)
        bn = model.module_at(site.bn) if site.bn is not None else None
        c = bn_factor(bn, u.shape[1], u)
        w = g * CURVATURES[site.activation](u) * c * c
        factors.append(SplitFactors(site, neuron_inputs(layer, seen_inputs[site.node]), w.detach()))
    return factors


def shared_factors(
    model: GrowNet, sites: Sequence[SplitSite], x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn
) -> list[SplitFactors]:
    """`collect_factors` of the batch `(x, y)`, the work shared by the ranks of a distributed run
    (growdsl/grow/collective.py): each rank collects its rows, `w` weighted by their share of
    the batch's mean loss, and the rows are gathered in order, so every rank holds the factors
    one process collects (the sum over m of S_i runs over the whole batch). Alone: the same."""
    x, y, weight = collective.my_rows(x, y)
    factors = collect_factors(model, sites, x, y, loss_fn)
    if not collective.active():
        return factors
    gather = collective.gather_rows
    return [replace(f, h=gather(f.h), w=gather(collective.part_of_mean(f.w, weight))) for f in factors]
