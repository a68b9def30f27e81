"""The statistics GradMax and TINY are made of, for every site in one forward and one backward
pass of the mean loss (eval mode: no dropout):

- `h` [M, D]: the inputs of the growing layer, one row per sample, a trailing 1 when it has a
  bias (a new neuron's incoming row θ includes its bias);
- `b` [M, Dc]: the inputs of the consumer, likewise;
- `g` [M, C]: ∂L/∂a, the gradient of the mean loss at the consumer's output (pre-activation),
  so the 1/M of an expectation is already in `g`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from growdsl.grow.newneurons.sites import NeuronSite
from growdsl.grow.splitting.factors import neuron_inputs
from growdsl.lazy import torch

if TYPE_CHECKING:
    from growdsl.compile import GrowNet

LossFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


@dataclass(frozen=True)
class SiteStats:
    """One site's `h`, `b` and `g` (see the module docstring)."""

    site: NeuronSite
    h: torch.Tensor
    b: torch.Tensor
    g: torch.Tensor

    def correlation(self) -> torch.Tensor:
        """GradMax's `M = Σ_m g_m h_mᵀ` [C, D]: the gradient of the mean loss with respect to a
        linear map from the growing layer's input to the consumer's output (a bypass at zero)."""
        return self.g.T @ self.h


def collect_stats(
    model: GrowNet, sites: Sequence[NeuronSite], x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn
) -> list[SiteStats]:
    """Every site's statistics from one forward and one backward pass; the model's mode is
    restored afterwards. Computed in float64 (the closed forms invert covariances)."""
    inputs: dict[str, torch.Tensor] = {}
    outputs: dict[str, torch.Tensor] = {}

    def keep(name: str, out: bool):  # noqa: ANN202 - a forward hook
        def hook(_module, args, result):  # noqa: ANN001, ANN202
            inputs[name] = args[0].detach()
            if out:
                outputs[name] = result

        return hook

    handles = []
    for site in sites:
        handles.append(model.module_at(site.node).register_forward_hook(keep(site.node, False)))
        handles.append(model.module_at(site.consumer).register_forward_hook(keep(site.consumer, True)))
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            loss = loss_fn(model(x), y)
            outs = [outputs[s.consumer] for s in sites]
            grads = torch.autograd.grad(loss, outs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    stats = []
    for site, grad in zip(sites, grads, strict=True):
        h = neuron_inputs(model.module_at(site.node), inputs[site.node]).double()
        b = neuron_inputs(model.module_at(site.consumer), inputs[site.consumer]).double()
        stats.append(SiteStats(site, h, b, grad.detach().reshape(-1, grad.shape[-1]).double()))
    return stats
