"""The container modules a graph's `seq`, `branch` and `choice` nodes compile to.

Each container registers its children under the last segment of their node ids, so a module's
dotted path inside a `GrowNet` is exactly its node id. The forwards are kept lean on purpose
(training throughput must match a hand-written module): children are iterated straight from
`_modules` in registration order, which is data-flow order; there are no shape checks, no
lookups by name and no per-call branching on the merge kind. Iterating `_modules` (rather than
a cached list) keeps a child replaced in place by weight surgery on the data path.
"""

from __future__ import annotations

import torch
from torch import nn


class Chain(nn.Module):
    """Runs its children one after another: a `seq` node, and a `choice` (its chosen path only)."""

    def __init__(self, children: dict[str, nn.Module]) -> None:
        super().__init__()
        for name, child in children.items():
            self.add_module(name, child)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for child in self._modules.values():
            x = child(x)
        return x


class Choice(Chain):
    """A `choice` node: holds only its chosen path, so unchosen options cost nothing."""


class Branch(nn.Module):
    """A `branch` node: feeds its input to every child path; subclasses say how to merge."""

    merge = ""

    def __init__(self, children: dict[str, nn.Module]) -> None:
        super().__init__()
        for name, child in children.items():
            self.add_module(name, child)

    def extra_repr(self) -> str:
        return f"merge={self.merge}"


class BranchAdd(Branch):
    """`branch add`: the element-wise sum of the paths (a residual block with an identity path)."""

    merge = "add"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        paths = iter(self._modules.values())
        out = next(paths)(x)
        for path in paths:
            out = out + path(x)
        return out


class BranchMean(Branch):
    """`branch mean`: the sum of the paths divided by their number."""

    merge = "mean"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        paths = iter(self._modules.values())
        out = next(paths)(x)
        for path in paths:
            out = out + path(x)
        return out / len(self._modules)


class BranchConcat(Branch):
    """`branch concat`: the paths' outputs stacked along the channel (feature) dimension."""

    merge = "concat"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([path(x) for path in self._modules.values()], dim=1)


BRANCHES: dict[str, type[Branch]] = {cls.merge: cls for cls in (BranchAdd, BranchMean, BranchConcat)}
