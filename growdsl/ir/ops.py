"""The op vocabulary of `.grow` v0: each op's signature, its defaults and its role in data flow.

This table is the one definition of which ops exist and what arguments they take; lowering
validates calls against it, the compiler maps each name to a module, shape inference and cost
accounting key their rules on the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REQUIRED = object()  # marks an argument without a default


@dataclass(frozen=True)
class OpSig:
    """`params` in positional order, each with its default (or REQUIRED)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()
    width: str | None = None  # the argument that sizes the output channels; may be a range
    transparent: bool = False  # passes channels through unchanged (bn, activations, pools, ...)
    choosable: tuple[str, ...] = field(default=())  # arguments that may be a set `{...}`
    doc: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.params)

    def defaults(self) -> dict[str, Any]:
        return {p: d for p, d in self.params if d is not REQUIRED}


_CONV_PARAMS = (("out", REQUIRED), ("k", 3), ("stride", 1), ("groups", 1), ("padding", None), ("bias", True))

OPS: dict[str, OpSig] = {
    s.name: s
    for s in (
        OpSig(
            "linear",
            (("out", REQUIRED), ("bias", True)),
            width="out",
            choosable=("out",),
            doc="fully connected layer; `linear(classes)` sizes the head from the data",
        ),
        OpSig(
            "conv",
            _CONV_PARAMS,
            width="out",
            choosable=("out", "k", "stride"),
            doc="2-D convolution; padding defaults to k // 2 (same size at stride 1)",
        ),
        OpSig(
            "sepconv",
            (("out", REQUIRED), ("k", 3), ("stride", 1)),
            width="out",
            choosable=("out", "k"),
            doc="depthwise k x k convolution then pointwise 1 x 1 convolution",
        ),
        OpSig("bn", transparent=True, doc="batch normalisation (1-d or 2-d from the input)"),
        OpSig("relu", transparent=True),
        OpSig("gelu", transparent=True),
        OpSig("tanh", transparent=True),
        OpSig("sigmoid", transparent=True),
        OpSig("silu", transparent=True, doc="swish / SiLU"),
        OpSig("rbf", transparent=True, doc="Gaussian radial basis exp(-u²/2), as in Liu et al. 2019's toy"),
        OpSig(
            "maxpool",
            (("k", 2), ("stride", None), ("padding", 0)),
            transparent=True,
            choosable=("k",),
            doc="max pooling; stride defaults to k; padding (at most k // 2) keeps the size at stride 1",
        ),
        OpSig(
            "avgpool",
            (("k", 2), ("stride", None), ("padding", 0)),
            transparent=True,
            choosable=("k",),
            doc="average pooling (padded zeros count); stride defaults to k",
        ),
        OpSig("gap", transparent=True, doc="global average pool to [C, 1, 1]"),
        OpSig("flatten", doc="flattens everything but the batch dimension"),
        OpSig("dropout", (("p", 0.5),), transparent=True),
        OpSig("identity", transparent=True),
        OpSig(
            "slice",
            (("start", REQUIRED), ("end", REQUIRED)),
            doc="channels [start, end) of its input ([C] or [C, H, W]): what each path of a split-concat "
            "of an identity, a pool or a grouped conv reads (docs/methods/pathlevel.md)",
        ),
        OpSig(
            "pad_channels",
            (("out", REQUIRED),),
            doc="its input's channels followed by zero channels up to `out`: the parameter-free shortcut "
            "of He et al.'s CIFAR ResNets (their option A) where a stage doubles the channels",
        ),
    )
}

ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid", "silu", "rbf")
WEIGHT_OPS = ("linear", "conv", "sepconv")  # ops that own growable output neurons


def implied_defaults(op: str, args: dict[str, Any]) -> dict[str, Any]:
    """Each argument's default given the others: a conv's (and a sepconv's, which has no padding
    argument) padding is k // 2, a pool's stride is k."""
    defaults = OPS[op].defaults()
    if op in ("conv", "sepconv") and "k" in args:
        defaults["padding"] = args["k"] // 2
    if "stride" in defaults and defaults["stride"] is None and "k" in args:
        defaults["stride"] = args["k"]
    return defaults


def resolved_args(op: str, args: dict[str, Any]) -> dict[str, Any]:
    """`args` over every default, derived ones included (a conv's padding `k // 2`, a pool's
    stride `k`): lowered graphs already hold them, graphs a transform built may not."""
    given = {**OPS[op].defaults(), **args}
    return {**implied_defaults(op, given), **{name: v for name, v in given.items() if v is not None}}


def explicit_args(op: str, args: dict[str, Any]) -> dict[str, Any]:
    """The resolved arguments a person would have to write: those that differ from the default."""
    defaults = implied_defaults(op, args)
    return {k: v for k, v in args.items() if k not in defaults or defaults[k] != v}
