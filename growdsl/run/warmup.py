"""`after_growth(warmup: N)`: the learning rate ramps up again over the N batches after a growth
step.

A fresh optimizer after a step (the default) has no moments yet: Adam's first updates move every
weight by about the learning rate whatever its gradient, and new neurons or layers not yet fitted
give large gradients through the old weights. A linear warm-up multiplies the learning rate of the
k-th batch after a step by min(1, k / N) (k = 1, 2, ...; Goyal et al. 2017's ramp), so those first
updates are small and the rate is whole again after N batches (docs/language.md, "After a growth
step"; the measurement in docs/benchmarks.md, "Growth defaults").

Like a rollback's scale (growdsl/run/rollback.py) the factor is derived from the history (the epoch
of the last `grow` line) and the batch's place in the epoch, so a resumed run warms up exactly as
the uninterrupted one. The factor scales each param group's rate for one optimizer step and the
rate is put back after it, so the learning-rate schedule never sees it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from growdsl.lazy import torch


def warmup_factors(history: list[dict[str, Any]], epoch: int, steps: int, warmup: int) -> list[float]:
    """The learning-rate factor of each of the `steps` batches of the epoch after `epoch`:
    min(1, k / warmup) for the k-th batch after the last growth step (k from 1), 1 without a
    warm-up or a step."""
    last = max((r["epoch"] for r in history if r["event"] == "grow"), default=None) if warmup else None
    if last is None:
        return [1.0] * steps
    before = (epoch - last) * steps  # batches trained since the step, before this epoch
    return [min(1.0, (before + k) / warmup) for k in range(1, steps + 1)]


@contextlib.contextmanager
def scaled_lr(optimizer: torch.optim.Optimizer, factor: float) -> Iterator[None]:
    """Every param group's learning rate times `factor` inside, exactly the old one after."""
    if factor == 1.0:
        yield
        return
    rates = [group["lr"] for group in optimizer.param_groups]
    for group, lr in zip(optimizer.param_groups, rates, strict=True):
        group["lr"] = lr * factor
    try:
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, rates, strict=True):
            group["lr"] = lr
