"""One builder per op of `growdsl.ir.ops.OPS`: an op node and its input shape to a torch module.

Builders take the op's arguments (the table's defaults overlaid with the node's `args`) and the
per-sample input shape from `infer_shapes` (no batch dimension), so a weight layer is sized by
what actually flows into it. Modules are constructed with torch's default initialisation under
the global RNG, so a seeded compile is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from growdsl.ir.ops import OPS, resolved_args

Shape = tuple[int, ...]


class SepConv(nn.Sequential):
    """Depthwise k x k convolution (one filter per channel), then a pointwise 1 x 1 convolution.

    The two halves are the submodules `depthwise` and `pointwise`, so their parameters are keyed
    `<node id>.depthwise.weight` and `<node id>.pointwise.weight`.
    """

    def __init__(self, in_channels: int, out_channels: int, k: int, stride: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, k, stride=stride, padding=k // 2, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)


class RBF(nn.Module):
    """The Gaussian radial basis activation exp(-u²/2), elementwise: the hidden unit of the 1-D
    regression toy on which Liu et al. (2019) first show splitting."""

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return torch.exp(-0.5 * u * u)


class ChannelSlice(nn.Module):
    """`slice(start, end)`: channels `[start, end)` of dimension 1 (after the batch), for flat
    `(N, C)` and image `(N, C, H, W)` inputs alike; a view, no parameters."""

    def __init__(self, start: int, end: int) -> None:
        super().__init__()
        self.start, self.end = start, end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start : self.end]

    def extra_repr(self) -> str:
        return f"start={self.start}, end={self.end}"


class PadChannels(nn.Module):
    """`pad_channels(out)`: the input's channels, then zero channels up to `out` (dimension 1 after
    the batch); the parameter-free shortcut of He et al.'s CIFAR ResNets where channels double."""

    def __init__(self, out: int) -> None:
        super().__init__()
        self.out = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        extra = self.out - x.shape[1]
        return torch.nn.functional.pad(x, (0, 0) * (x.dim() - 2) + (0, extra))

    def extra_repr(self) -> str:
        return f"out={self.out}"


def _linear(a: dict[str, Any], inp: Shape) -> nn.Module:
    return nn.Linear(inp[-1], a["out"], bias=a["bias"])


def _conv(a: dict[str, Any], inp: Shape) -> nn.Module:
    return nn.Conv2d(
        inp[0], a["out"], a["k"], stride=a["stride"], padding=a["padding"], groups=a["groups"], bias=a["bias"]
    )


def _sepconv(a: dict[str, Any], inp: Shape) -> nn.Module:
    return SepConv(inp[0], a["out"], a["k"], a["stride"])


def _bn(a: dict[str, Any], inp: Shape) -> nn.Module:
    # [C] and [C, L] normalise per feature over the batch (and length); [C, H, W] per channel.
    return nn.BatchNorm2d(inp[0]) if len(inp) == 3 else nn.BatchNorm1d(inp[0])


def _pool(cls: type[nn.Module]) -> Callable[[dict[str, Any], Shape], nn.Module]:
    def build(a: dict[str, Any], inp: Shape) -> nn.Module:
        return cls(a["k"], stride=a["stride"], padding=a.get("padding", 0))

    return build


def _fixed(factory: Callable[[], nn.Module]) -> Callable[[dict[str, Any], Shape], nn.Module]:
    return lambda a, inp: factory()


BUILDERS: dict[str, Callable[[dict[str, Any], Shape], nn.Module]] = {
    "linear": _linear,
    "conv": _conv,
    "sepconv": _sepconv,
    "bn": _bn,
    "relu": _fixed(nn.ReLU),
    "gelu": _fixed(nn.GELU),
    "tanh": _fixed(nn.Tanh),
    "sigmoid": _fixed(nn.Sigmoid),
    "silu": _fixed(nn.SiLU),
    "rbf": _fixed(RBF),
    "maxpool": _pool(nn.MaxPool2d),
    "avgpool": _pool(nn.AvgPool2d),
    "gap": _fixed(lambda: nn.AdaptiveAvgPool2d(1)),
    "flatten": _fixed(nn.Flatten),
    "dropout": lambda a, inp: nn.Dropout(a["p"]),
    "identity": _fixed(nn.Identity),
    "slice": lambda a, inp: ChannelSlice(a["start"], a["end"]),
    "pad_channels": lambda a, inp: PadChannels(a["out"]),
}


def build_op(op: str, args: dict[str, Any], inp: Shape) -> nn.Module:
    """The module for one op node: `args` with every default resolved; `inp` sizes weight layers.
    A plugin op is built by the factory it registered (growdsl/plugins.py)."""
    build = BUILDERS.get(op) or OPS[op].build
    return build(resolved_args(op, args), inp)
