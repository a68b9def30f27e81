"""The extreme eigenpairs of every neuron's splitting matrix: exact (batched `eigh`) or fast
(batched Lanczos that only multiplies by S).

The positive split needs (λ_min, v_min); the signed split (Wu et al. 2020) also needs
(λ_max, v_max). Eigenvectors are unit rows [C, D].
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from growdsl.grow.splitting.factors import SplitFactors
from growdsl.grow.splitting.matrices import (
    MATRIX_BYTES,
    iter_splitting_matrices,
    operator_scale,
    splitting_product,
)
from growdsl.lazy import torch

FIRST_CHECK = 6
CHECK_EVERY = 3
"""The fast solver checks convergence after `FIRST_CHECK` Lanczos steps and every `CHECK_EVERY`
after that. A check is a batched `eigh` of the unconverged neurons' tridiagonals, which on the
CPU costs about as much as two products with S. On the MLPs of benchmarks/split_cost.py, from
`_start`'s vectors, 80 % of the neurons converge by step 6 and nearly all by step 15;
checking at 6, 9, 12, ... was the fastest of the schedules tried (every 2 steps from step 4 to
every 4 from step 8)."""
ORTHONORMAL_TOL = 1e-6
"""How far from orthonormal (largest entry of QᵀQ - I) `row_space`'s Cholesky basis may be: well
below the float32 the networks train in (float64 inputs get a basis good to about the same)."""


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
        return _lift(EigenPairs(lam, v), basis, generator)
    neg_lam, v_max = min_rayleigh(reduced, -1.0, iters=iters, tol=tol, generator=generator)
    return _lift(EigenPairs(lam, v, -neg_lam, v_max), basis, generator)


def row_space(factors: SplitFactors) -> tuple[SplitFactors, torch.Tensor | None]:
    """Factors with `h` expressed in an orthonormal basis Q of its row space (`h = K Qᵀ`, so
    `S_i = Q (Kᵀ diag(w_i) K) Qᵀ`), and Q [D, M]; the factors unchanged (and None) when M >= D.

    K is the Cholesky factor of the Gram matrix G = h hᵀ and Qᵀ = K⁻¹ h, in float64: half the time
    of a Householder QR of hᵀ. Its error grows with cond(h)², so QᵀQ = K⁻¹ G K⁻ᵀ is checked
    against the identity and, when h is too close to rank-deficient for it (off by more than
    `ORTHONORMAL_TOL`), the QR is used instead."""
    m, d = factors.h.shape
    if m >= d:
        return factors, None
    h = factors.h.double()
    gram = h @ h.T
    chol, info = torch.linalg.cholesky_ex(gram)
    if int(info) == 0:
        identity = torch.eye(m, dtype=h.dtype, device=h.device)
        inverse = torch.linalg.solve_triangular(chol, identity, upper=False)
        if float((inverse @ gram @ inverse.T - identity).abs().max()) <= ORTHONORMAL_TOL:
            return replace(factors, h=chol.to(factors.h.dtype)), (inverse @ h).T.to(factors.h.dtype)
    q, r = torch.linalg.qr(factors.h.T)  # hᵀ = Q R: Q [D, M] orthonormal, R [M, M]
    return replace(factors, h=r.T.contiguous()), q


def _lift(pairs: EigenPairs, basis: torch.Tensor | None, generator: torch.Generator | None) -> EigenPairs:
    """Eigenpairs of the row-space problem as eigenpairs of S (see `fast_eigenpairs`). Where the
    row space holds no negative eigenvalue (no positive one, for λ_max), the extreme one is the
    0 of the directions outside it: λ becomes 0 and v a unit vector orthogonal to the row space,
    so that λ stays vᵀSv of the returned v."""
    if basis is None:
        return pairs
    outside = _orthogonal_direction(basis, generator)
    v_min = torch.where((pairs.lam_min > 0)[:, None], outside, pairs.v_min @ basis.T)
    lam_min = pairs.lam_min.clamp(max=0)
    if pairs.lam_max is None or pairs.v_max is None:
        return EigenPairs(lam_min, v_min)
    v_max = torch.where((pairs.lam_max < 0)[:, None], outside, pairs.v_max @ basis.T)
    return EigenPairs(lam_min, v_min, pairs.lam_max.clamp(min=0), v_max)


def _orthogonal_direction(basis: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A random unit vector orthogonal to the columns of `basis` (orthonormal, [D, M] with M < D)."""
    x = torch.randn(basis.shape[0], generator=generator, dtype=basis.dtype).to(basis.device)
    for _ in range(2):  # twice is enough in floating point ("twice is enough", Kahan)
        x = x - basis @ (basis.T @ x)
    return x / torch.linalg.vector_norm(x)


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
    and never invents a smaller one, so the extreme pair stays accurate without reorthogonalising
    against the whole basis, which would cost O(k) more memory traffic a step.

    Batched over neurons, at most `iters` products each. Neurons converge at very different
    speeds (a well separated, strongly negative λ_min in 6 to 10 steps; a near-zero one of a
    barely used neuron may take all of them), so every `CHECK_EVERY` steps each neuron's error
    bound on θ is checked and the converged ones are locked: their pair is stored and they leave
    the batch, and later steps only multiply by the matrices still unconverged. The bound is the
    Kato-Temple one (see `_ritz`); a neuron is done when it is below `tol`·|θ₁| (or at rounding
    level, S_i scaled to norm ≤ 1). It is an estimate, not a guarantee: a start vector nearly
    orthogonal to the true eigenvector can converge to the next eigenvalue first, which no bound
    computed from the Krylov space can see.

    Returns (λ [C], unit v [C, D]), λ being the Rayleigh quotient of the returned v itself (one
    more product), so that the loss decrease a split predicts is exactly the one of the direction
    it moves along, and never below the true λ_min."""
    h = factors.h
    neurons, dim = factors.neurons, factors.dim
    steps = min(iters, dim)
    signed = replace(factors, w=sign * factors.w)  # sign·S_i = hᵀ diag(sign·w_i) h
    floor = torch.finfo(h.dtype).tiny  # a safe divisor: 1e-300 would underflow to 0 in float32
    rounding = torch.finfo(h.dtype).eps
    # Each S_i divided by its `operator_scale`, a bound on its norm: the recurrence then works
    # with numbers of order one. Without it a nearly dead neuron (w ~ 1e-25 behind a saturated
    # tanh) has vectors whose squared norms underflow in float32, and its NaNs broke the batched
    # eigh of every neuron. λ is taken from the unscaled S at the end.
    unit = replace(signed, w=signed.w / operator_scale(factors).clamp_min(floor))
    batch = unit  # its columns for the neurons still unconverged
    planes = _Planes(h, neurons, dim, 3)
    active = torch.arange(neurons, device=h.device)
    q = _start(unit, planes.take(neurons), generator)
    q_prev = planes.take(neurons).zero_()
    b_prev = h.new_zeros(neurons, 1)
    pool = h.new_empty(steps * neurons * dim)  # the basis; its pages cost only once written
    basis: list[tuple[torch.Tensor, torch.Tensor]] = []  # per step: (neurons then active, their q)
    used = 0
    ritz_vectors = h.new_zeros(neurons, steps, dtype=torch.float64)  # y of each neuron once locked
    alpha = torch.zeros_like(ritz_vectors)
    beta = torch.zeros_like(ritz_vectors)
    for j in range(steps):
        basis.append((active, pool[used : used + q.numel()].view_as(q).copy_(q)))
        used += q.numel()
        r = planes.product(batch, q)
        a = torch.linalg.vecdot(r, q).unsqueeze(1)
        if j:  # after an exact breakdown q = 0: a diagonal of 2 keeps those steps out of the minimum
            a = torch.where(b_prev == 0, 2.0, a)  # (every S_i is scaled to norm <= 1)
        r.addcmul_(a, q, value=-1).addcmul_(b_prev, q_prev, value=-1)
        r.addcmul_(torch.linalg.vecdot(r, q).unsqueeze(1), q, value=-1)  # local reorthogonalisation
        b = torch.linalg.vector_norm(r, dim=1, keepdim=True)
        alpha[:, j], beta[:, j] = a.squeeze(1), b.squeeze(1)
        planes.give(q_prev)
        q_prev, q, b_prev = q, r.div_(b.clamp_min(floor)), b
        k = j + 1
        if k < steps and (k < FIRST_CHECK or k % CHECK_EVERY):
            continue
        theta, y, bound = _ritz(alpha, beta, k)
        done = bound <= tol * theta.abs() + rounding  # rounding: θ of a neuron with S_i = 0 is 0
        if k == steps:
            done = torch.ones_like(done)
        finished = done.nonzero().squeeze(1)
        ritz_vectors[active[finished], :k] = y[finished]
        left = (~done).nonzero().squeeze(1)
        if len(left) == 0:
            break
        active, b_prev, batch = active[left], b_prev[left], replace(batch, w=batch.w[:, left])
        alpha, beta = alpha[left], beta[left]
        q, q_prev = planes.select(q, left), planes.select(q_prev, left)
    v = h.new_zeros(neurons, dim)
    ritz_vectors = ritz_vectors.to(h.dtype)
    for j, (rows, plane) in enumerate(basis):  # v = Q y for every neuron, a step at a time
        v.index_add_(0, rows, plane.mul_(ritz_vectors[rows, j : j + 1]))
    v = v / v.norm(dim=1, keepdim=True).clamp_min(floor)  # a neuron with S_i = 0 may end at v = 0
    return torch.linalg.vecdot(splitting_product(signed, v), v), v


def _start(factors: SplitFactors, out: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Unit start vectors for Lanczos, one per neuron, written into `out`: Σ_m min(w_mi, 0) h_m,
    the samples that pull the quotient down weighted by how much (`factors` carry the sign: for
    λ_max they are those of positive curvature), normalised, plus a random part
    a thousandth of its size (so that no eigenvector is missing from the start). A neuron without
    negative curvature starts from the random part alone. The random part is one vector for all
    neurons: it is as random against each neuron's eigenvectors as its own would be, and drawing
    one per neuron took a millisecond on the CPU at width 1024. Against a purely random start, half
    as many neurons were still unconverged after 8 steps on the networks of benchmarks/split_cost.py."""
    torch.mm(factors.w.clamp(max=0).T, factors.h, out=out)
    norm = torch.linalg.vector_norm(out, dim=1, keepdim=True)
    usable = norm > torch.finfo(out.dtype).tiny ** 0.5
    out.div_(torch.where(usable, norm, 1.0)).mul_(usable)
    noise = torch.randn(out.shape[1], generator=generator, dtype=out.dtype).to(out.device)
    out.add_(noise / out.shape[1] ** 0.5 * torch.where(usable, 1e-3, 1.0))
    return out.div_(torch.linalg.vector_norm(out, dim=1, keepdim=True))


class _Planes:
    """The Lanczos loop's [rows, D] vectors, carved from a few preallocated buffers and reused.

    On the CPU, megabyte-sized temporaries cost time beyond their arithmetic (allocation, first
    touch of fresh pages), and the loop would make several per step: measured at width 1024, a
    product with S written into reused buffers took 1.1 ms, with fresh ones 2.5 ms. A plane is a
    contiguous view of one free buffer; `give` returns it."""

    def __init__(self, h: torch.Tensor, rows: int, dim: int, count: int) -> None:
        self.samples, self.dim = h.shape[0], dim
        self.free = [h.new_empty(rows * dim) for _ in range(count)]
        self.mixed = h.new_empty(self.samples * rows)  # h vᵀ, [M, rows]

    def take(self, rows: int) -> torch.Tensor:
        return self.free.pop()[: rows * self.dim].view(rows, self.dim)

    def give(self, plane: torch.Tensor) -> None:
        self.free.append(plane.view(-1))

    def product(self, factors: SplitFactors, v: torch.Tensor) -> torch.Tensor:
        """`splitting_product` written into a free plane and the reused [M, rows] buffer."""
        mixed = self.mixed[: self.samples * len(v)].view(self.samples, len(v))
        return splitting_product(factors, v, out=self.take(len(v)), mixed=mixed)

    def select(self, plane: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """`plane[rows]` in a free plane; `plane`'s buffer is freed."""
        kept = torch.index_select(plane, 0, rows, out=self.take(len(rows)))
        self.give(plane)
        return kept


def _ritz(alpha: torch.Tensor, beta: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The smallest Ritz pair (θ₁, y₁) of each neuron's k x k Lanczos tridiagonal (float64), and an
    error bound on θ₁: Kato-Temple's r₁²/δ, never above the residual r₁ = |β_k y₁ₖ| itself. δ is
    the distance from θ₁ to the rest of the spectrum, estimated as θ₂ − r₂ − θ₁ (the second Ritz
    value less its own residual: θ₂ alone sits above λ₂). An estimate: in a review, on random
    matrices with dense spectra, a few neurons in a thousand locked with θ₁ still near λ₂ (up to
    9 % off at 20 steps, where running all 20 steps found λ₁); on the benchmark networks the 256
    most negative λ_min of a layer came out within 3e-5 of `eigh`'s. A batched `eigh`: at these
    sizes its per-matrix cost is below that of any vectorised inverse iteration in Python."""
    diag, off = alpha[:, :k], beta[:, : k - 1]
    tri = torch.diag_embed(diag) + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
    values, vectors = torch.linalg.eigh(tri)
    residuals = beta[:, k - 1 : k].abs() * vectors[:, -1, :2].abs()  # of the two smallest pairs
    bound = residuals[:, 0]
    if k > 1:
        gap = (values[:, 1] - residuals[:, 1] - values[:, 0]).clamp_min(torch.finfo(values.dtype).tiny)
        bound = torch.minimum(bound, bound * bound / gap)
    return values[:, 0], vectors[:, :, 0], bound
