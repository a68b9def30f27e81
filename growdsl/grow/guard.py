"""Growth statistics that are not finite skip the step; they never crash the run or reach the weights.

A transform's statistics (splitting matrices and their eigenpairs, firefly's trained directions
and scores) are computed from the net and a sample of the training split. When the net is close
to diverging, those numbers overflow even while the epoch's loss is still finite: `eigh` fails to
converge (`torch.linalg.LinAlgError`) or returns NaN, a score or a direction holds NaN. Applying
such a candidate would write NaN into the weights. So the policy proposes through
`propose_finite`: a transform whose proposal raises `LinAlgError` or holds a non-finite score or
payload contributes no candidate this step, and the step leaves one history line for it,

    {"event": "grow_skipped", "epoch": 8, "transform": "split", "reason": "..."}

The other transforms of the `grow` block propose as usual. Nothing else is caught: any other
exception is a bug and must show as one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from growdsl.grow.net import Net
from growdsl.grow.transform import Candidate, LossFn, Pair, Transform
from growdsl.lazy import torch


def propose_finite(
    transforms: Sequence[Transform], net: Net, train: Pair, loss_fn: LossFn, rng: torch.Generator, epoch: int
) -> tuple[dict[int, list[Candidate]], list[dict[str, Any]]]:
    """Each transform's candidates by its index (as `GrowthPolicy.select` takes them), and a
    `grow_skipped` history line for each transform whose statistics were not finite."""
    candidates: dict[int, list[Candidate]] = {}
    skipped: list[dict[str, Any]] = []
    for i, transform in enumerate(transforms):
        try:
            proposed = transform.propose(net, train, loss_fn, rng)
            reason = _nonfinite_reason(proposed)
        except torch.linalg.LinAlgError as e:
            reason = f"{type(e).__name__}: {str(e).splitlines()[0]}"
        if reason is None:
            candidates[i] = proposed
        else:
            candidates[i] = []
            skipped.append(
                {"event": "grow_skipped", "epoch": epoch, "transform": transform.name, "reason": reason}
            )
    return candidates, skipped


def _nonfinite_reason(candidates: list[Candidate]) -> str | None:
    for cand in candidates:
        if not math.isfinite(cand.score):
            return f"the score of a candidate at {cand.node} is {cand.score}"
        if not _all_finite(cand.payload):
            return f"a candidate at {cand.node} holds non-finite values"
    return None


def _all_finite(value: Any) -> bool:
    """Whether every float and floating tensor inside `value` (dataclasses, sequences, dicts) is finite."""
    if isinstance(value, torch.Tensor):
        return not value.is_floating_point() or bool(torch.isfinite(value).all())
    if isinstance(value, float):
        return math.isfinite(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(_all_finite(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, (list, tuple)):
        return all(_all_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    return True
