"""The extreme eigenpairs of every neuron's splitting matrix: exact (batched `eigh`) or fast
(batched Lanczos that only multiplies by S).

The positive split needs (λ_min, v_min); the signed split (Wu et al. 2020) also needs
(λ_max, v_max). Eigenvectors are unit rows [C, D].
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    """The same pairs without forming S: `min_rayleigh` on S (and on -S for the largest).

    With fewer rows than dimensions (M < D: a wide linear layer, few samples) every S_i lives in
    the M-dimensional row space of h, so the solver runs there (`row_space`) at O(M²) instead of
    O(M·D) per product, and maps the vectors back; the D - M directions outside it have
    eigenvalue 0, so λ_min is at most 0 and λ_max at least 0."""
    reduced, basis = row_space(factors)
    lam, v = min_rayleigh(reduced, 1.0, iters=iters, tol=tol, generator=generator)
    if not largest:
        return _lift(EigenPairs(lam, v), basis)
    neg_lam, v_max = min_rayleigh(reduced, -1.0, iters=iters, tol=tol, generator=generator)
    return _lift(EigenPairs(lam, v, -neg_lam, v_max), basis)


def row_space(factors: SplitFactors) -> tuple[SplitFactors, torch.Tensor | None]:
    """Factors with `h` expressed in an orthonormal basis Q of its row space (`h = K Qᵀ`, so
    `S_i = Q (Kᵀ diag(w_i) K) Qᵀ`), and Q [D, M]; the factors unchanged (and None) when M >= D."""
    m, d = factors.h.shape
    if m >= d:
        return factors, None
    q, r = torch.linalg.qr(factors.h.T)  # hᵀ = Q R: Q [D, M] orthonormal, R [M, M]
    return replace(factors, h=r.T.contiguous()), q


def _lift(pairs: EigenPairs, basis: torch.Tensor | None) -> EigenPairs:
    """Eigenpairs of the row-space problem as eigenpairs of S (see `fast_eigenpairs`)."""
    if basis is None:
        return pairs
    lam_max = None if pairs.lam_max is None else pairs.lam_max.clamp(min=0)
    v_max = None if pairs.v_max is None else pairs.v_max @ basis.T
    return EigenPairs(pairs.lam_min.clamp(max=0), pairs.v_min @ basis.T, lam_max, v_max)


def min_rayleigh(
    factors: SplitFactors,
    sign: float,
    *,
    iters: int,
    tol: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise the Rayleigh quotient vᵀ(sign·S_i)v / vᵀv for every neuron i at once.

    The energy-aware paper minimises the quotient by stochastic gradient steps (RMSprop), each
    costing one product S v. For the same number of products the minimum over the whole Krylov
    subspace span{v, Sv, ..., S^(k-1) v} is never worse than any k-step gradient path from v, and
    Lanczos finds it: a three-term recurrence builds a basis Q of that subspace and a tridiagonal
    T = QᵀSQ whose smallest eigenpair (θ, y) gives λ ≈ θ, v = Q y. In float32 Q slowly loses
    orthogonality as Ritz values converge, which only repeats converged eigenvalues ("ghosts")
    and never invents a smaller one, so the extreme pair stays accurate (measured: 1e-5 relative
    against `eigh` at width 1024) without reorthogonalising against the whole basis, which would
    cost O(k) more memory traffic a step. Batched over neurons: `iters` products in
    all; every few steps the Ritz residuals |β_k y_k| are checked and the solve stops once every
    neuron's is below `tol` times its scale (`operator_scale`). Returns (λ [C], unit v [C, D]).
    """
    h = factors.h
    neurons, dim = factors.neurons, factors.dim
    steps = min(iters, dim)
    scale = operator_scale(factors).double()
    q = torch.randn(neurons, dim, generator=generator, dtype=torch.float64).to(h)
    q = q / q.norm(dim=1, keepdim=True)
    basis = h.new_empty(neurons, steps, dim)
    alpha = scale.new_zeros(neurons, steps)
    beta = scale.new_zeros(neurons, steps)
    q_prev, b_prev = torch.zeros_like(q), h.new_zeros(neurons, 1)
    floor = torch.finfo(h.dtype).tiny  # a safe divisor: 1e-300 would underflow to 0 in float32
    done = steps
    for j in range(steps):
        basis[:, j] = q
        w = sign * splitting_product(factors, q)
        a = (w * q).sum(dim=1, keepdim=True)
        w = w - a * q - b_prev * q_prev
        w = w - (w * q).sum(dim=1, keepdim=True) * q  # local reorthogonalisation against q only
        b = w.norm(dim=1, keepdim=True)
        alpha[:, j], beta[:, j] = a.squeeze(1).double(), b.squeeze(1).double()
        q_prev, b_prev = q, b
        q = w / b.clamp_min(floor)
        if (j + 1) % 10 == 0 and j + 1 < steps:
            theta, y = _ritz(alpha, beta, j + 1)
            if bool((beta[:, j].abs() * y[:, -1].abs() <= tol * scale).all()):
                done = j + 1
                break
    theta, y = _ritz(alpha, beta, done)
    v = (y.to(h.dtype).unsqueeze(1) @ basis[:, :done]).squeeze(1)
    return theta.to(h.dtype), v / v.norm(dim=1, keepdim=True)


def _ritz(alpha: torch.Tensor, beta: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The smallest eigenpair of each neuron's k x k Lanczos tridiagonal (float64).

    Eigenvalues from `eigvalsh`; the eigenvector by two steps of inverse iteration just below the
    eigenvalue, solved with the tridiagonal (Thomas) recurrence for all neurons at once: half the
    time of a batched `eigh`, which computes every eigenvector of every neuron."""
    diag, off = alpha[:, :k], beta[:, : k - 1]
    tri = torch.diag_embed(diag) + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
    theta = torch.linalg.eigvalsh(tri)[:, 0]
    shifted = diag - (theta - 1e-10 * (theta.abs() + off.abs().sum(dim=1) + 1.0))[:, None]
    y = torch.ones_like(diag)
    for _ in range(2):
        y = _solve_tridiagonal(shifted, off, y)
        y = y / y.norm(dim=1, keepdim=True)
    return theta, y


def _solve_tridiagonal(diag: torch.Tensor, off: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve T x = rhs for symmetric tridiagonal T (diagonal `diag` [C, k], off-diagonal `off`
    [C, k - 1]) for every row at once: the Thomas algorithm, a forward and a backward sweep."""
    k = diag.shape[1]
    tiny = torch.finfo(diag.dtype).tiny
    ratio = torch.zeros_like(diag)
    carry = torch.zeros_like(rhs)
    for i in range(k):
        pivot = diag[:, i] - (off[:, i - 1] * ratio[:, i - 1] if i else 0.0)
        pivot = torch.where(pivot.abs() < tiny, torch.full_like(pivot, tiny), pivot)
        if i < k - 1:
            ratio[:, i] = off[:, i] / pivot
        carry[:, i] = (rhs[:, i] - (off[:, i - 1] * carry[:, i - 1] if i else 0.0)) / pivot
    x = torch.empty_like(rhs)
    x[:, -1] = carry[:, -1]
    for i in range(k - 2, -1, -1):
        x[:, i] = carry[:, i] - ratio[:, i] * x[:, i + 1]
    return x
