"""Splitting matrices from their factors: formed explicitly (exact method) or only multiplied
by (fast method). See `factors.py` for `S_i = hᵀ diag(w[:, i]) h`."""

from __future__ import annotations

from collections.abc import Iterator

from growdsl.grow.splitting.factors import SplitFactors
from growdsl.lazy import torch

MATRIX_BYTES = 256 * 2**20
"""Memory one batch of formed matrices (and the weighted inputs that build them) may take."""


def neuron_chunk(factors: SplitFactors, budget: int = MATRIX_BYTES) -> int:
    """How many neurons' matrices fit in `budget` bytes at once, at least one."""
    m, d = factors.h.shape
    per_neuron = (m * d + 2 * d * d) * factors.h.element_size()
    return max(1, min(factors.neurons, budget // per_neuron))


def splitting_matrices(factors: SplitFactors, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """S_i for neurons `start:stop` as [k, D, D]: Σ_m w[m, i] h[m] h[m]ᵀ (symmetric by build)."""
    w = factors.w[:, start:stop]
    weighted = w.T[:, :, None] * factors.h[None]  # [k, M, D]
    return weighted.transpose(1, 2) @ factors.h


def iter_splitting_matrices(
    factors: SplitFactors, budget: int = MATRIX_BYTES
) -> Iterator[tuple[int, torch.Tensor]]:
    """(first neuron, S of a chunk of neurons), chunks sized to stay within `budget` bytes."""
    step = neuron_chunk(factors, budget)
    for start in range(0, factors.neurons, step):
        yield start, splitting_matrices(factors, start, start + step)


def splitting_product(
    factors: SplitFactors,
    v: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
    mixed: torch.Tensor | None = None,
) -> torch.Tensor:
    """S_i v_i for every neuron at once, without forming S: rows of hᵀ(w ⊙ (h vᵀ)), v as [C, D].
    `out` [C, D] and `mixed` [M, C] are optional buffers to write into (the fast solver reuses
    them across its steps).

    This is the gradient the energy-aware paper gets from a zero-valued dummy term
    σ''(u) c² (yᵀh)(vᵀh) with respect to y at y = 0 (Wang et al. 2019)."""
    mixed = torch.mm(factors.h, v.T, out=mixed).mul_(factors.w)
    return torch.mm(mixed.T, factors.h, out=out)


def operator_scale(factors: SplitFactors) -> torch.Tensor:
    """Σ_m |w[m, i]| ‖h[m]‖² per neuron: the trace of S_i with |w|, a bound on ‖S_i‖₂ that sets
    the scale of the fast solver's residual test."""
    return factors.w.abs().T @ (factors.h * factors.h).sum(dim=1)
