"""`tiny(...)`: TINY as a growth transform (Verbockhaven, Rudkiewicz, Chevallier, Charpiat, TMLR
2024, "Growing tiny networks: spotting expressivity bottlenecks and fixing them optimally";
docs/methods/tiny.md).

At a consumer layer with input `b` and pre-activation `a`, the loss asks each sample's `a` to
move along `v = −∂ℓ/∂a`. The best update of the consumer's existing weights explains part of it;
what is left, projected on the growing layer's input `h`, is the *expressivity bottleneck*, and
the new neurons (incoming `α`, outgoing `ω`, σ linearised at 0) that best fit it come from one
SVD (`bottleneck`). They are applied at amplitude γ (incoming `√γ α`, outgoing `√γ ω`), γ fixed
or the best of a grid on the scoring batch (`gamma: auto`, the paper's line search). GradMax is
the special case `S = I`, no update of the existing weights, and zero incoming weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from growdsl.grow.eps_search import decrease_measurer
from growdsl.grow.net import Net
from growdsl.grow.newneurons.collect import SiteStats
from growdsl.grow.newneurons.place import NeuronValues
from growdsl.grow.newneurons.transform import NewNeuronTransform, Proposed
from growdsl.grow.registry import register_transform
from growdsl.grow.transform import Candidate, LossFn, Pair, step_options
from growdsl.lang.ast import Name
from growdsl.lazy import torch
from growdsl.options import BadValue, Option, integer, number

GAMMA_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)


def _gamma_value(value) -> float | str:  # noqa: ANN001 - an option check
    if isinstance(value, Name) and value.id == "auto":
        return "auto"
    try:
        return number(0.0, lo_open=True)(value)
    except BadValue:
        raise BadValue("a number > 0, or auto (the best of a grid on the scoring batch)") from None


TINY_OPTIONS: dict[str, Option] = {
    **step_options(0.25, "add"),
    "gamma": Option("auto", _gamma_value, "amplitude γ of the new neurons, or auto (a line search)"),
    "threshold": Option(1e-3, number(0.0), "smallest singular value σ_k a new neuron may have"),
    "samples": Option(256, integer(1), "training samples the statistics average over"),
}


@dataclass(frozen=True)
class Bottleneck:
    """The new neurons of one site: singular values `sigma` (descending, each at least the
    threshold), incoming rows `alpha` [K, D], outgoing columns `omega` [K, C], and the best
    update of the consumer's existing weights `update` (dW*ᵀ, [Dc, C]) they were fitted after."""

    sigma: torch.Tensor
    alpha: torch.Tensor
    omega: torch.Tensor
    update: torch.Tensor


def inverse_sqrt(s: torch.Tensor, rel: float = 1e-10) -> torch.Tensor:
    """`S^{-1/2}` of a symmetric positive semi-definite `S`, through its eigenvectors; directions
    whose eigenvalue is under `rel` of the largest are left out (a pseudo-inverse)."""
    values, vectors = torch.linalg.eigh(s)
    keep = values > rel * values.max().clamp(min=0)
    scale = torch.where(keep, values.clamp(min=1e-300).rsqrt(), torch.zeros_like(values))
    return (vectors * scale) @ vectors.T


def bottleneck(stats: SiteStats, k: int, threshold: float) -> Bottleneck:
    """At most `k` new neurons by the closed form (docs/methods/tiny.md), over `M` samples:
    `v_m = −M g_m` (g of the mean loss), `S = E[b bᵀ]`, the best update `dW*ᵀ = S⁺ E[b vᵀ]`, the
    residual `r = v − dW* b`, `N = E[h rᵀ]`, `S_h = E[h hᵀ]`, `S_h^{-1/2} N = U Σ Vᵀ`; neuron k is
    `α_k = √σ_k S_h^{-1/2} u_k`, `ω_k = √σ_k v_k`, for σ_k ≥ `threshold`."""
    h, b, g = stats.h, stats.b, stats.g
    m = h.shape[0]
    v = -m * g
    update = torch.linalg.pinv(b.T @ b / m, hermitian=True) @ (b.T @ v / m)
    residual = v - b @ update
    root = inverse_sqrt(h.T @ h / m)
    u, sigma, vh = torch.linalg.svd(root @ (h.T @ residual / m), full_matrices=False)
    kept = int((sigma[:k] >= threshold).sum()) if threshold > 0 else min(k, len(sigma))
    scale = sigma[:kept].sqrt()
    alpha = (root @ u[:, :kept]).T * scale[:, None]
    return Bottleneck(sigma[:kept], alpha, vh[:kept] * scale[:, None], update)


def linear_decrease(stats: SiteStats, alpha: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """Per neuron, the first-order loss decrease of adding `ω σ(αᵀh)` to the consumer's output with
    σ linearised at 0 (σ(0) = 0, σ'(0) = 1): `−ωᵀ (Σ_m g_m h_mᵀ) α`."""
    return -((omega @ stats.correlation()) * alpha).sum(1)


@dataclass
class TinyTransform(NewNeuronTransform):
    """The `tiny` transform of a grow block; options as in `TINY_OPTIONS`."""

    OPTIONS: ClassVar[dict[str, Option]] = TINY_OPTIONS

    name: str = "tiny"

    def neurons(self, stats: SiteStats, k: int, net: Net) -> list[Proposed]:
        """The bottleneck's neurons at γ = 1 (`gamma` scales them in `propose`), each scored by
        its first-order loss decrease with σ linearised (`linear_decrease`)."""
        found = bottleneck(stats, k, self.options["threshold"])
        decreases = linear_decrease(stats, found.alpha, found.omega).tolist()
        return [
            Proposed(NeuronValues(a, w), d, {"singular_value": round(s, 8)})
            for a, w, d, s in zip(found.alpha, found.omega, decreases, found.sigma.tolist(), strict=True)
        ]

    def propose(self, net: Net, train: Pair, loss_fn: LossFn, rng: torch.Generator) -> list[Candidate]:
        """The bottleneck's neurons at amplitude γ: the option's, or with `gamma: auto` the γ of
        `GAMMA_GRID` whose neurons (the step's `limit` best) decrease the loss on a sample of the
        training rows most; none when no γ decreases it."""
        unit = super().propose(net, train, loss_fn, rng)
        gamma = self.options["gamma"]
        if gamma != "auto" or not unit:
            return [_at_gamma(c, gamma) for c in unit]
        x, y = train
        take = torch.randperm(len(x), generator=rng)[: self.options["samples"]].to(x.device)
        measure = decrease_measurer(net, self, (x[take].to(net.device), y[take].to(net.device)), loss_fn)
        best = sorted(unit, key=lambda c: c.score, reverse=True)[: self.limit(net)]
        measured = [measure([_at_gamma(c, g) for c in best]) for g in GAMMA_GRID]
        top = max(range(len(GAMMA_GRID)), key=lambda i: measured[i])
        if not measured[top] > 0:
            return []
        search = {"grid": list(GAMMA_GRID), "measured": [float(f"{m:.6g}") for m in measured]}
        return [_at_gamma(c, GAMMA_GRID[top], search) for c in unit]

    def describe(self, chosen: list[Candidate], net: Net) -> dict[str, Any]:
        """The shared detail, with the step's γ (and its line search) once, not per neuron."""
        detail = super().describe(chosen, net)
        step = {k: v for k, v in chosen[0].detail.items() if k in _STEP_KEYS}
        detail["neurons"] = [{k: v for k, v in n.items() if k not in _STEP_KEYS} for n in detail["neurons"]]
        return {**detail, **step}


_STEP_KEYS = ("gamma", "gamma_search")  # detail keys every neuron of a step shares


def _at_gamma(cand: Candidate, gamma: float, search: dict[str, Any] | None = None) -> Candidate:
    """`cand` (at γ = 1) at amplitude `gamma`: incoming and outgoing times √γ, score times γ."""
    root = gamma**0.5
    values = NeuronValues(root * cand.payload.incoming, root * cand.payload.outgoing)
    detail = {**cand.detail, "gamma": gamma} | ({"gamma_search": search} if search else {})
    return dataclasses.replace(cand, score=cand.score * gamma, detail=detail, payload=values)


register_transform("tiny", TinyTransform.from_call)
