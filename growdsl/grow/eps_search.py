"""`eps: auto`: choose a growth step's ε by a line search on the scoring batch.

A transform whose candidates predict their loss decrease as a function of ε (splitting: the
second-order model `(ε²/2)·Σ w_k δ_k²·vᵀSv`, docs/methods/splitting.md) offers the candidates the
step would take on its own; for each ε of a geometric grid, 1e-3 to 0.3, they are applied through
the shared step (`step.apply_chosen`, the same carry and `init` as the real step) and the loss
decrease on the scoring batch is measured in float64 (at ε = 1e-3 the decrease is ~1e-7 of the
loss, below float32's resolution). The rule: **the largest ε whose measured decrease is within
a factor 4/3 of the predicted one** (ratio measured/predicted in [0.75, 4/3]); where no ε
agrees (the model does not describe this net, e.g. through ReLU's softplus stand-in) the
papers' 0.01 is used and the growth line says so (`agrees: false`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

from growdsl.grow.net import Net
from growdsl.grow.step import apply_chosen
from growdsl.grow.transform import Candidate, LossFn, Pair, Transform
from growdsl.grow.wire import sendable
from growdsl.lazy import torch

EPS_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3)
AGREE = (0.75, 4 / 3)  # measured / predicted decrease counted as agreement
FALLBACK = 0.01  # the papers' ε, used when no ε of the grid agrees


@sendable
@dataclasses.dataclass(frozen=True)
class EpsSearch:
    """The line search of one step: the ε chosen, and per grid ε the predicted and measured loss
    decrease of the candidates it was run on."""

    eps: float
    grid: tuple[float, ...]
    predicted: tuple[float, ...]
    measured: tuple[float, ...]
    agrees: bool

    def record(self) -> dict[str, Any]:
        """The growth line's `eps_search`, to 6 digits (a non-finite measurement is written as
        `null` and flagged by the history's writer, growdsl/strict_json.py)."""

        def num(x: float) -> float:
            return float(f"{x:.6g}")

        return {
            "eps": self.eps,
            "agrees": self.agrees,
            "grid": list(self.grid),
            "predicted": [num(p) for p in self.predicted],
            "measured": [num(m) for m in self.measured],
        }


def search_eps(
    predict: Callable[[float], float], measure: Callable[[float], float], grid: tuple[float, ...] = EPS_GRID
) -> EpsSearch:
    """The largest ε of `grid` whose measured decrease agrees with the predicted one (see the
    module docstring), or `FALLBACK`."""
    predicted = tuple(predict(e) for e in grid)
    measured = tuple(measure(e) for e in grid)
    agreeing = [
        e
        for e, p, m in zip(grid, predicted, measured, strict=True)
        if p > 0 and AGREE[0] <= m / p <= AGREE[1]
    ]
    return EpsSearch(max(agreeing, default=FALLBACK), grid, predicted, measured, bool(agreeing))


def decrease_measurer(
    net: Net, transform: Transform, batch: Pair, loss_fn: LossFn
) -> Callable[[list[Candidate]], float]:
    """`chosen -> L(net) − L(net with chosen applied)` on `batch`, in float64 and eval mode."""
    before = _loss64(net.model, batch, loss_fn)
    return lambda chosen: before - _loss64(apply_chosen(net, [(transform, chosen)]).net.model, batch, loss_fn)


def _loss64(model: torch.nn.Module, batch: Pair, loss_fn: LossFn) -> float:
    x, y = batch
    double = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        out = double(x.to(torch.float64))
        return float(loss_fn(out, y.to(torch.float64) if y.is_floating_point() else y))
