"""Split schemes: how one neuron becomes several, and the loss change each predicts.

A neuron θ with outgoing weight a becomes copies θ + ε δ_k v with outgoing weights w_k a,
Σ w_k = 1 (so the function is unchanged at ε = 0). Every scheme here has δ̄ = Σ w_k δ_k = 0, so
the first-order term vanishes and (Liu et al. 2019, eq. 3; Wu et al. 2020 for w_k < 0)

    ΔL ≈ (ε²/2) Σ_k w_k δ_k² · vᵀ S v.

The first copy is the neuron itself (changed in place); the others are new neurons.
"""

from __future__ import annotations

from dataclasses import dataclass

from growdsl.grow.splitting.eigen import EigenPairs
from growdsl.grow.wire import sendable
from growdsl.lazy import torch


@sendable
@dataclass(frozen=True)
class Scheme:
    """Offsets δ_k (multiples of ε v) and outgoing weights w_k of the copies, the neuron first."""

    name: str
    offsets: tuple[float, ...]
    weights: tuple[float, ...]

    @property
    def added(self) -> int:
        """New neurons the scheme adds."""
        return len(self.offsets) - 1

    @property
    def curvature_factor(self) -> float:
        """Σ_k w_k δ_k²: the predicted ΔL is (ε²/2) times this times vᵀSv."""
        return sum(w * d * d for w, d in zip(self.weights, self.offsets, strict=True))


POSITIVE = Scheme("positive", (1.0, -1.0), (0.5, 0.5))
"""Two copies at θ ± ε v_min, halves of the outgoing weight: ΔL ≈ (ε²/2) λ_min."""


def signed_two(c: float) -> Scheme:
    """Two copies, weights (1 + c, -c), offsets (c/(1+c), 1) along v_max:
    ΔL ≈ -(ε²/2) c/(1+c) λ_max (docs/methods/splitting.md, "Signed splitting")."""
    return Scheme("signed_two", (c / (1.0 + c), 1.0), (1.0 + c, -c))


def signed_three(c: float) -> Scheme:
    """Three copies θ, θ ± ε v_max with weights (1 + c, -c/2, -c/2): ΔL ≈ -(ε²/2) c λ_max."""
    return Scheme("signed_three", (0.0, 1.0, -1.0), (1.0 + c, -c / 2.0, -c / 2.0))


def predicted_change(scheme: Scheme, curvature: torch.Tensor, eps: float) -> torch.Tensor:
    """Second-order loss change (ε²/2) Σ_k w_k δ_k² · vᵀSv, `curvature` = vᵀSv per neuron."""
    return 0.5 * eps * eps * scheme.curvature_factor * curvature


@dataclass(frozen=True)
class NeuronSplits:
    """The best split of every neuron of a layer: its predicted loss decrease (> 0 where a split
    helps), the scheme (index into `schemes`) and the unit direction v."""

    decrease: torch.Tensor  # [C]
    scheme: torch.Tensor  # [C] long
    direction: torch.Tensor  # [C, D]
    eigenvalue: torch.Tensor  # [C]: vᵀSv of the direction (λ_min, or λ_max for a signed split)
    schemes: tuple[Scheme, ...]


def best_splits(pairs: EigenPairs, eps: float, signed: Scheme | None = None) -> NeuronSplits:
    """Per neuron, the positive split (which helps where λ_min < 0) or, given `signed`, the signed
    split (which helps where λ_max > 0), whichever predicts the larger decrease per new neuron."""
    decrease = -predicted_change(POSITIVE, pairs.lam_min, eps)
    if signed is None or pairs.lam_max is None or pairs.v_max is None:
        positive = torch.zeros_like(decrease, dtype=torch.long)
        return NeuronSplits(decrease, positive, pairs.v_min, pairs.lam_min, (POSITIVE,))
    signed_decrease = -predicted_change(signed, pairs.lam_max, eps)
    use_signed = signed_decrease / signed.added > decrease / POSITIVE.added
    return NeuronSplits(
        torch.where(use_signed, signed_decrease, decrease),
        use_signed.long(),
        torch.where(use_signed[:, None], pairs.v_max, pairs.v_min),
        torch.where(use_signed, pairs.lam_max, pairs.lam_min),
        (POSITIVE, signed),
    )
