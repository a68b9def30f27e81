"""Growth on many processes: the one protocol every transform's statistics follow.

A distributed run (docs/distributed.md) trains one net on several ranks, each holding a full copy
of the data and of the net. A growth decision taken from each rank's own data would differ
between ranks, and the copies would drift apart. So every growth statistic is a sum over data,
computed in shares and summed over the ranks before anything is decided:

    rows, weight = share(n)      # this rank's rows of an n-row statistics batch, and n_r / n
    loss = loss_fn(model(x[rows]), y[rows]) * weight   # its part of the batch's mean loss
    ... backward ...
    all_sum(grad)                # the batch's gradient, on every rank; or
    gather_rows(h)               # per-row statistics in row order, as one process has them

after which every rank holds the statistics one process would compute (up to the order of
floating-point sums). `decided(value)` then hands rank 0's decision (the chosen edits as JSON,
their payloads, the growth generator's state) to every rank, so no rank decides on its own, and
`check_same(state)` compares a checksum of every tensor across ranks after the step.

Semantics, exactly:

| call | one process | rank r of R |
| --- | --- | --- |
| `ranks()` | 1 | R |
| `my_rows(x, y)` | `(x, y, 1.0)` | `(x[rows], y[rows], weight)` of `share(len(x))` |
| `part_of_mean(m, w)` | `m` | `m · w` |
| `share(n)` | `(slice(0, n), 1.0)` | `(slice(a, b), (b - a) / n)`: the r-th of R contiguous parts |
| `all_sum(t)` | `t` | `t` summed over ranks, in place |
| `from_rank0(t)` | `t` | rank 0's `t`, in place |
| `gather_rows(t)` | `t` | every rank's `t` concatenated along dim 0, in rank order |
| `decided(v)` | `v` | rank 0's `v`, sent as JSON and tensor bytes (`wire.pack`; no pickle) |
| `check_same(tensors)` | nothing | `RankMismatch` naming the first tensor whose checksum is not rank 0's |

Every call is a no-op alone, so a transform written this way runs unchanged in one process. Every
collective goes through this module, which counts its time and bytes (`traffic`), the figures of
the communication benchmark (benchmarks/ddp_growth.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from growdsl.errors import RunError
from growdsl.grow import wire
from growdsl.lazy import torch


class RankMismatch(RunError):
    """The ranks of a distributed run hold different weights after a growth step."""


@dataclass
class Traffic:
    """Time spent in collectives and the bytes handed to them by this rank."""

    seconds: float = 0.0
    bytes: int = 0
    calls: int = 0


traffic = Traffic()


@contextmanager
def counted() -> Iterator[Traffic]:
    """The traffic of the collectives made inside the block."""
    global traffic
    outer, traffic = traffic, Traffic()
    try:
        yield traffic
    finally:
        outer.seconds, outer.bytes, outer.calls = (
            outer.seconds + traffic.seconds,
            outer.bytes + traffic.bytes,
            outer.calls + traffic.calls,
        )
        traffic = outer


def active() -> bool:
    """Whether this process is one rank of several."""
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def ranks() -> int:
    return torch.distributed.get_world_size() if active() else 1


def rank() -> int:
    return torch.distributed.get_rank() if active() else 0


def share(n: int) -> tuple[slice, float]:
    """This rank's contiguous rows of an `n`-row batch and their share `n_r / n` of its mean."""
    if not active():
        return slice(0, n), 1.0
    world, r = ranks(), rank()
    base, extra = divmod(n, world)
    start = r * base + min(r, extra)
    stop = start + base + (r < extra)
    return slice(start, stop), (stop - start) / n if n else 0.0


def my_rows(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """This rank's rows of a statistics batch `(x, y)` and their share of its mean (`share`)."""
    rows, weight = share(len(x))
    return (x, y, weight) if weight == 1.0 else (x[rows], y[rows], weight)


def part_of_mean(mean: torch.Tensor, weight: float) -> torch.Tensor:
    """A mean over this rank's rows as its part of the mean over the whole batch (`mean · n_r /
    n`); the value itself alone. Summed over the ranks, the parts (or their gradients) are the
    whole batch's."""
    return mean if weight == 1.0 else mean * weight


def _comm_device() -> torch.device:
    """Where a collective's tensors must be: the GPU of this rank for nccl, else the CPU."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@contextmanager
def _timed(nbytes: int) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        traffic.seconds += time.perf_counter() - start
        traffic.bytes += nbytes
        traffic.calls += 1


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """`t` summed over the ranks, in place (and returned)."""
    return _in_place(t, torch.distributed.all_reduce)


def from_rank0(t: torch.Tensor) -> torch.Tensor:
    """Rank 0's values of `t` on every rank, in place (and returned)."""
    return _in_place(t, lambda moved: torch.distributed.broadcast(moved, 0))


def _in_place(t: torch.Tensor, collective: Callable[[torch.Tensor], Any]) -> torch.Tensor:
    """`collective` applied to `t` in place: on a contiguous copy on the process group's device when
    `t` is not one already, copied back after; `t` itself outside a distributed run."""
    if not active():
        return t
    with _timed(t.numel() * t.element_size()):
        dev = _comm_device()
        moved = t if t.device == dev and t.is_contiguous() else t.contiguous().to(dev)
        collective(moved)
        if moved is not t:
            t.copy_(moved)
    return t


def all_sum_grads(tensors: list[torch.Tensor]) -> None:
    """The `.grad` of every tensor summed over the ranks, in one flat all-reduce (a tensor
    without a gradient on every rank is left alone)."""
    if not active():
        return
    grads = [t.grad for t in tensors if t.grad is not None]
    if not grads:
        return
    flat = all_sum(torch.cat([g.reshape(-1) for g in grads]))
    for g, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        g.copy_(part.view_as(g))


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Every rank's `t` (rows of a statistic, any count per rank) stacked along dim 0 in rank order."""
    if not active():
        return t
    dist, world = torch.distributed, ranks()
    dev = _comm_device()
    counts = torch.tensor([t.shape[0]], device=dev)
    every = [torch.zeros_like(counts) for _ in range(world)]
    with _timed(counts.element_size()):
        dist.all_gather(every, counts)
    most = int(max(c.item() for c in every))
    padded = torch.zeros((most, *t.shape[1:]), dtype=t.dtype, device=dev)
    padded[: t.shape[0]] = t
    parts = [torch.empty_like(padded) for _ in range(world)]
    with _timed(padded.numel() * padded.element_size()):
        dist.all_gather(parts, padded)
    rows = torch.cat([p[: int(c.item())] for p, c in zip(parts, every, strict=True)])
    return rows.to(t.device)


def decided(value: Any) -> Any:
    """Rank 0's `value` on every rank: whatever the other ranks computed is replaced by it. It
    travels as JSON and tensor bytes (growdsl/grow/wire.py), never as pickle; a value of a kind
    the wire cannot carry stops every rank with `wire.NotSendable`."""
    if not active():
        return value
    dev = _comm_device()
    refused = None
    if rank() == 0:
        try:
            data = wire.pack(value)
        except wire.NotSendable as error:
            refused, data = error, wire.pack_refusal(str(error))
    size = torch.tensor([data.numel() if rank() == 0 else 0], dtype=torch.long, device=dev)
    with _timed(size.element_size()):
        torch.distributed.broadcast(size, 0)
    buffer = data.to(dev) if rank() == 0 else torch.empty(int(size.item()), dtype=torch.uint8, device=dev)
    with _timed(buffer.numel()):
        torch.distributed.broadcast(buffer, 0)
    if refused is not None:
        raise refused
    return value if rank() == 0 else wire.unpack(buffer)


def checksums(tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Two float64 sums per tensor (of its values and of its values weighted by position), in
    key order: equal copies give bit-equal sums, and a swapped pair of entries changes the second."""
    rows = []
    for t in tensors.values():
        flat = t.detach().reshape(-1).double()
        position = torch.arange(1, flat.numel() + 1, dtype=torch.float64, device=flat.device)
        rows.append(torch.stack([flat.sum(), (flat * position).sum() / max(flat.numel(), 1)]))
    return torch.stack(rows).cpu() if rows else torch.zeros(0, 2, dtype=torch.float64)


def check_same(tensors: Mapping[str, torch.Tensor], when: str) -> None:
    """Raise `RankMismatch` on every rank, naming the first tensor (in key order) whose checksum
    on some rank differs from rank 0's; `when` says at what point (e.g. "after the growth step of
    epoch 4"). The key lists must be the same on every rank."""
    if not active():
        return
    names = list(tensors)
    mine = checksums(tensors)
    reference = decided((names, mine))
    if reference[0] != names:
        first = 1
    else:
        differs = (mine != reference[1]).any(dim=1).nonzero()
        first = int(differs[0, 0]) + 1 if len(differs) else 0
    flags = gather_rows(torch.tensor([first], dtype=torch.long)).tolist()  # 0: the same as rank 0
    if any(flags):
        index = next(f for f in flags if f) - 1
        name = names[index] if reference[0] == names else "(the list of tensors)"
        where = ", ".join(str(r) for r, f in enumerate(flags) if f)
        raise RankMismatch(
            f"the ranks' weights differ {when}: tensor '{name}' on rank(s) {where} is not rank 0's; "
            "the run stops (its folder resumes from the last checkpoint)"
        )
