"""The op vocabulary of `.grow` v0: each op's signature, its defaults and its role in data flow.

This table is the one definition of which ops exist and what arguments they take; lowering
validates calls against it, the compiler maps each name to a module, shape inference and cost
accounting key their rules on the same names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REQUIRED = object()  # marks an argument without a default

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Widening:
    """Which of an op's tensors (state-dict names relative to its module) are indexed by channels,
    so that growth can re-index them when a layer gains neurons (growdsl/grow/surgery.py):

    - `rows`: dimension 0 is the op's own output channels (a growable op's neurons and their
      per-neuron state: weight rows, bias);
    - `columns`: dimension 1 is the op's input channels (what a reader of a widened layer resizes);
    - `per_input`: dimension 0 is the op's input channels, but they are not summed over (a
      sepconv's depthwise filters): copied with their channel, never scaled by a split;
    - `per_channel`: dimension 0 is the channels passing through a transparent op (bn's scale,
      shift and running statistics);
    - `neurons`: the submodule whose output rows are the neurons, an `nn.Linear` or `nn.Conv2d`
      (`""`: the op's module itself), where splitting reads a neuron's inputs.
    """

    rows: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    per_input: tuple[str, ...] = ()
    per_channel: tuple[str, ...] = ()
    neurons: str = ""


@dataclass(frozen=True)
class OpSig:
    """`params` in positional order, each with its default (or REQUIRED).

    A built-in op's shape, cost and module live in the rule tables keyed by its name
    (growdsl/ir/shapes.py, growdsl/ir/cost.py, growdsl/compile/ops.py); a plugin op
    (growdsl/plugins.py, docs/plugins.md) brings its own as `shape`, `cost` and `build`."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()
    width: str | None = None  # the argument that sizes the output channels; may be a range
    transparent: bool = False  # passes channels through unchanged (bn, activations, pools, ...)
    choosable: tuple[str, ...] = field(default=())  # arguments that may be a set `{...}`
    doc: str = ""
    # transparent in shape, but each output channel depends on all input channels (a layer norm):
    # widening a layer that feeds it would change what it computes, so growth stops there
    mixes_channels: bool = False
    widening: Widening = Widening()
    shape: Callable[[dict[str, Any], Shape], Shape] | None = None  # a plugin's shape rule
    cost: Callable[[dict[str, Any], Shape, Shape], tuple[int, int]] | None = None  # (params, FLOPs)
    build: Callable[[dict[str, Any], Shape], Any] | None = None  # a plugin's module factory
    plugin: str | None = None  # the plugin that registered the op; None for a built-in

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.params)

    def defaults(self) -> dict[str, Any]:
        return {p: d for p, d in self.params if d is not REQUIRED}


_OWN_ROWS = Widening(rows=("weight", "bias"), columns=("weight",))
_CONV_PARAMS = (("out", REQUIRED), ("k", 3), ("stride", 1), ("groups", 1), ("padding", None), ("bias", True))

OPS: dict[str, OpSig] = {
    s.name: s
    for s in (
        OpSig(
            "linear",
            (("out", REQUIRED), ("bias", True)),
            width="out",
            choosable=("out",),
            widening=_OWN_ROWS,
            doc="fully connected layer; `linear(classes)` sizes the head from the data",
        ),
        OpSig(
            "conv",
            _CONV_PARAMS,
            width="out",
            choosable=("out", "k", "stride"),
            widening=_OWN_ROWS,
            doc="2-D convolution; padding defaults to k // 2 (same size at stride 1)",
        ),
        OpSig(
            "sepconv",
            (("out", REQUIRED), ("k", 3), ("stride", 1)),
            width="out",
            choosable=("out", "k"),
            widening=Widening(
                rows=("pointwise.weight", "pointwise.bias"),
                columns=("pointwise.weight",),
                per_input=("depthwise.weight",),
                neurons="pointwise",
            ),
            doc="depthwise k x k convolution then pointwise 1 x 1 convolution",
        ),
        OpSig(
            "bn",
            transparent=True,
            widening=Widening(per_channel=("weight", "bias", "running_mean", "running_var")),
            doc="batch normalisation (1-d or 2-d from the input)",
        ),
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

BUILTIN_OPS = frozenset(OPS)
ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid", "silu", "rbf")
# ops that own growable output neurons; a plugin op with a `width` joins them when registered
# (growdsl/plugins.py), so this list is extended in place and read at each use
WEIGHT_OPS = ["linear", "conv", "sepconv"]


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
