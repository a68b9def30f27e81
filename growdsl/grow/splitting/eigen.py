"""The extreme eigenpairs of every neuron's splitting matrix: exact (batched `eigh`) or fast
(a batched block-size-1 LOBPCG that only multiplies by S).

The positive split needs (λ_min, v_min); the signed split (Wu et al. 2020) also needs
(λ_max, v_max). Eigenvectors are unit rows [C, D].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from growdsl.grow.splitting.factors import SplitFactors
from growdsl.grow.splitting.matrices import (
    MATRIX_BYTES,
    iter_splitting_matrices,
    operator_scale,
    splitting_product,
)


@dataclass(frozen=True)
class EigenPairs:
    """Per neuron: the smallest and the largest eigenvalue of S_i with unit eigenvectors.
    `lam_max`/`v_max` are None when only the smallest pair was asked for."""

    lam_min: torch.Tensor  # [C]
    v_min: torch.Tensor  # [C, D]
    lam_max: torch.Tensor | None = None
    v_max: torch.Tensor | None = None


def exact_eigenpairs(
    factors: SplitFactors, *, largest: bool = False, budget: int = MATRIX_BYTES
) -> EigenPairs:
    """Form S_i chunk by chunk and diagonalise each with `torch.linalg.eigh`: O(C·M·D² + C·D³)."""
    lam_min, v_min, lam_max, v_max = [], [], [], []
    for _, s in iter_splitting_matrices(factors, budget):
        vals, vecs = torch.linalg.eigh(s)
        lam_min.append(vals[:, 0])
        v_min.append(vecs[:, :, 0])
        lam_max.append(vals[:, -1])
        v_max.append(vecs[:, :, -1])
    pairs = EigenPairs(torch.cat(lam_min), torch.cat(v_min))
    if largest:
        pairs = EigenPairs(pairs.lam_min, pairs.v_min, torch.cat(lam_max), torch.cat(v_max))
    return pairs


def fast_eigenpairs(
    factors: SplitFactors,
    *,
    largest: bool = False,
    iters: int = 40,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
) -> EigenPairs:
    """The same pairs without forming S: `min_rayleigh` on S (and on -S for the largest)."""
    lam, v = min_rayleigh(factors, 1.0, iters=iters, tol=tol, generator=generator)
    if not largest:
        return EigenPairs(lam, v)
    neg_lam, v_max = min_rayleigh(factors, -1.0, iters=iters, tol=tol, generator=generator)
    return EigenPairs(lam, v, -neg_lam, v_max)


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(dim=1, keepdim=True)


def min_rayleigh(
    factors: SplitFactors,
    sign: float,
    *,
    iters: int,
    tol: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise the Rayleigh quotient vᵀ(sign·S_i)v / vᵀv for every neuron i at once.

    Plain gradient steps on the quotient (the energy-aware paper's RMSprop) converge slowly, so
    each iteration minimises it exactly over span{v, r, p} per neuron — the residual
    r = Sv - λv (the quotient's gradient direction) and the previous step p — by a batched 3x3
    Rayleigh-Ritz: LOBPCG with block size 1 (Knyazev 2001). Only one product with S per
    iteration (for r); S v and S p follow by linearity. Stops when every neuron's residual is
    below `tol` times its scale (`operator_scale`). Returns (λ [C], unit v [C, D]).
    """
    h = factors.h

    def apply(v: torch.Tensor) -> torch.Tensor:
        return sign * splitting_product(factors, v)

    scale = operator_scale(factors)[:, None]
    big = 10.0 * scale + 1.0  # beyond any eigenvalue: parks the directions a neuron lacks
    tiny = torch.finfo(h.dtype).eps ** 0.5
    floor = torch.finfo(h.dtype).tiny  # a safe divisor: 1e-300 would underflow to 0 in float32
    x = torch.randn(factors.neurons, factors.dim, generator=generator, dtype=torch.float64).to(h)
    x = x / x.norm(dim=1, keepdim=True)
    sx = apply(x)
    p = sp = None
    for _ in range(iters):
        lam = _rowdot(x, sx)
        r = sx - lam * x
        if bool((r.norm(dim=1, keepdim=True) <= tol * scale).all()):
            break
        r = r - _rowdot(r, x) * x
        rn = r.norm(dim=1, keepdim=True)
        r, r_ok = r / rn.clamp_min(floor), rn > 0
        sr = apply(r)
        basis, images, valid = [x, r], [sx, sr], [torch.ones_like(r_ok), r_ok]
        if p is not None:
            norm0 = p.norm(dim=1, keepdim=True)
            for _ in range(2):  # Gram-Schmidt twice keeps p orthogonal in float32
                a, b = _rowdot(p, x), _rowdot(p, r)
                p, sp = p - a * x - b * r, sp - a * sx - b * sr
            pn = p.norm(dim=1, keepdim=True)
            p_ok = pn > tiny * norm0
            p, sp = p / pn.clamp_min(floor), sp / pn.clamp_min(floor)
            basis.append(p)
            images.append(sp)
            valid.append(p_ok)
        q = torch.stack(basis, dim=1)  # [C, k, D]
        sq = torch.stack(images, dim=1)
        ok = torch.cat(valid, dim=1).to(h.dtype)  # [C, k]
        gram = q @ sq.transpose(1, 2)
        gram = 0.5 * (gram + gram.transpose(1, 2))
        gram = gram * ok[:, :, None] * ok[:, None, :] + torch.diag_embed((1 - ok) * big)
        _, vecs = torch.linalg.eigh(gram.double())  # 3x3: float64 costs nothing, avoids failures
        vecs = vecs.to(h.dtype)
        y = (vecs[:, :, :1] * ok[:, :, None]).transpose(1, 2)  # [C, 1, k]
        step, s_step = (y[:, :, 1:] @ q[:, 1:]).squeeze(1), (y[:, :, 1:] @ sq[:, 1:]).squeeze(1)
        x, sx = y[:, 0, :1] * x + step, y[:, 0, :1] * sx + s_step
        norm = x.norm(dim=1, keepdim=True)
        x, sx = x / norm, sx / norm
        p, sp = step, s_step
    return _rowdot(x, apply(x)).squeeze(1), x
