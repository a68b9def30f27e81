"""Second derivatives σ''(u) of the activations, the curvature that enters the splitting matrix.

`S(θ) = E[g · σ''(θᵀh) · h hᵀ]` (docs/methods/splitting.md): a split helps to second order only
through σ''. Each function takes the pre-activation `u` (the activation's input) and returns
σ''(u) elementwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from growdsl.lazy import torch

Curvature = Callable[["torch.Tensor"], "torch.Tensor"]

RELU_SURROGATE_BETA = 3.0
"""ReLU has σ'' = 0 almost everywhere; the authors use softplus with β = 3 as a smooth stand-in."""


def tanh_curvature(u: torch.Tensor) -> torch.Tensor:
    """tanh'' = -2 t (1 - t²), t = tanh(u)."""
    t = torch.tanh(u)
    return -2.0 * t * (1.0 - t * t)


def sigmoid_curvature(u: torch.Tensor) -> torch.Tensor:
    """s'' = s (1 - s)(1 - 2s), s = sigmoid(u)."""
    s = torch.sigmoid(u)
    return s * (1.0 - s) * (1.0 - 2.0 * s)


def gelu_curvature(u: torch.Tensor) -> torch.Tensor:
    """Exact (erf) GELU, u Φ(u): its second derivative is φ(u)(2 - u²), φ the normal density."""
    phi = torch.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)
    return phi * (2.0 - u * u)


def silu_curvature(u: torch.Tensor) -> torch.Tensor:
    """SiLU, u s(u): its second derivative is s(1 - s)(2 + u(1 - 2s))."""
    s = torch.sigmoid(u)
    return s * (1.0 - s) * (2.0 + u * (1.0 - 2.0 * s))


def rbf_curvature(u: torch.Tensor) -> torch.Tensor:
    """exp(-u²/2) has second derivative (u² - 1) exp(-u²/2)."""
    return (u * u - 1.0) * torch.exp(-0.5 * u * u)


def relu_surrogate_curvature(u: torch.Tensor) -> torch.Tensor:
    """softplus_β(u) = log(1 + e^{βu}) / β has second derivative β s(βu)(1 - s(βu)); β = 3."""
    s = torch.sigmoid(RELU_SURROGATE_BETA * u)
    return RELU_SURROGATE_BETA * s * (1.0 - s)


CURVATURES: dict[str, Curvature] = {
    "tanh": tanh_curvature,
    "sigmoid": sigmoid_curvature,
    "gelu": gelu_curvature,
    "silu": silu_curvature,
    "rbf": rbf_curvature,
    "relu": relu_surrogate_curvature,
}
"""Activation op name -> σ''. An op not listed has no curvature: a neuron feeding it is not
splittable (a linear neuron's splitting matrix is zero, so no split changes the loss to second
order)."""
