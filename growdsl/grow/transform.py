"""The `Transform` protocol every growth method implements, and what it trades in.

A transform proposes scored `Candidate`s for a net, each holding the `Edit` it would make
(`growdsl.ir.edits`) and a payload (an eigenvector, a learned direction); a decider picks among
the candidates of every transform of a `grow` block (the greedy policy of `policy.py`); the shared
step (`step.py`) applies the chosen edits through the one weight carry (`surgery.carry`), calling
the transform's `init` to set what each edit added (docs/architecture.md, "Growth, step by step").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self

from growdsl.errors import Span, SpecError
from growdsl.grow.net import Net
from growdsl.grow.surgery import Init
from growdsl.ir.dataflow import DataFlow
from growdsl.ir.edits import Edit
from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import WEIGHT_OPS
from growdsl.lang.ast import Call, ListValue, Name, Value
from growdsl.lang.suggest import did_you_mean
from growdsl.lazy import torch
from growdsl.options import BadValue, Option, integer, number, read_options

Pair = tuple["torch.Tensor", "torch.Tensor"]
LossFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


@dataclass(frozen=True)
class Candidate:
    """One possible change: `edit` is the structural change, `score` its predicted loss decrease
    (larger is better). What it costs is measured by applying the edit (`ir.cost.added_cost`), and
    whether the ranges allow it by `ir.edits.room`. `detail` goes into the history; `payload` is
    the transform's own (an eigenvector, a learned direction), read by its `init`."""

    transform: str
    edit: Edit
    score: float
    detail: dict[str, Any] = field(default_factory=dict)
    payload: Any = field(default=None, compare=False, repr=False)

    @property
    def node(self) -> str:
        return self.edit.target


class Transform(Protocol):
    name: str

    def propose(self, net: Net, train: Pair, loss_fn: LossFn, rng: torch.Generator) -> list[Candidate]:
        """Scored candidates for `net`, from (a sample of) the training split."""
        ...

    def limit(self, net: Net) -> int | None:
        """How many candidates one step may take (e.g. `frac` of the current neurons)."""
        ...

    def init(self, chosen: list[Candidate]) -> Init | None:
        """What sets the values of what the chosen candidates' (merged) edit added, given the new
        net and the carry (`surgery.carry`); None leaves the carry's defaults."""
        ...

    def describe(self, chosen: list[Candidate], net: Net) -> dict[str, Any]:
        """The `detail` of the history line of the chosen candidates' (merged) edit, `net` the
        net after it."""
        ...

    def check(self, graph: ArchGraph) -> None:
        """Raise a SpecError for options that do not fit the model (an `on:` label it lacks),
        so `growdsl check` catches them before any training."""
        ...

    def continual(self) -> Transform:
        """This transform restricted to adding brand-new neurons (continual learning keeps old
        neurons and paths fixed), or a SpecError saying why it cannot be."""
        ...


@dataclass
class OptionsTransform:
    """What the transforms share: their call's validated options (`read_transform_options`), the
    span `on:` errors point at, and the check that `on:` names labels of the model."""

    OPTIONS: ClassVar[dict[str, Option]] = {}

    options: dict[str, Any]
    on_span: Span | None = None
    call: Call | None = None

    @classmethod
    def from_call(cls, call: Call) -> Self:
        """Validate the call's options against the class's `OPTIONS`, then the combinations
        `refuse_conflicts` forbids; every mistake is a SpecError at its place."""
        options, on_span = read_transform_options(call, cls.OPTIONS)
        cls.refuse_conflicts(options, call)
        return cls(options, on_span, call)

    @classmethod
    def refuse_conflicts(cls, options: dict[str, Any], call: Call) -> None:
        """Options that are valid one by one but not together (a SpecError at the place); none
        unless a transform says otherwise."""

    def check(self, graph: ArchGraph) -> None:
        """`on:` must name labels of the model."""
        targets(graph, self.options["on"], self.on_span)


def labels_option(value: Value) -> list[str]:
    """The `on: [labels]` option's check: a list of labels (a single name is a list of one)."""
    items = value.items if isinstance(value, ListValue) else (value,)
    if not all(isinstance(v, Name) for v in items):
        raise BadValue("a list of labels, as in on: [hidden1]")
    return [v.id for v in items]


def step_options(frac: float, adds: str) -> dict[str, Option]:
    """The options every transform shares: how much one step may take (`frac` of the current
    neurons of its target layers, or a `count`) and where it acts (`on`)."""
    return {
        "frac": Option(
            frac, number(0.0, 1.0, lo_open=True), f"share of the current neurons one step may {adds}"
        ),
        "count": Option(None, integer(1), "candidates one step may take (instead of frac)"),
        "on": Option(None, labels_option, "labels of the layers to grow"),
    }


def read_transform_options(call: Call, options: dict[str, Option]) -> tuple[dict[str, Any], Span | None]:
    """A transform call's options (SpecErrors at their places), and the span `on:` errors point at."""
    values = read_options(call, options, f"{call.name} option")
    given = call.keywords
    if "count" in given and "frac" in given:
        raise SpecError(f"{call.name} takes frac or count, not both", given["count"].span)
    return values, given["on"].span if "on" in given else call.span


def step_limit(options: dict[str, Any], neurons: int) -> int:
    """`count`, or `frac` of `neurons` (the current neurons of the target layers), at least one."""
    if options["count"] is not None:
        return options["count"]
    return max(1, math.floor(options["frac"] * neurons))


def targets(graph: ArchGraph, labels: list[str] | None, span=None) -> set[str]:
    """The weight ops a transform may act on: every one, or those `on: [labels]` names. A label
    on a channel-transparent op (`relu as stem`) names the weight op producing its input; a
    label on a container names every weight op inside it."""
    weight_ops = {n for n in graph.walk() if graph.kind(n) == "op" and graph[n]["op"] in WEIGHT_OPS}
    if labels is None:
        return weight_ops
    flow = DataFlow(graph)
    chosen: set[str] = set()
    for label in labels:
        nodes = graph.by_label(label)
        if not nodes:
            known = sorted({a["label"] for _, a in graph.g.nodes(data=True) if a.get("label")})
            guess = did_you_mean(label, known)
            raise SpecError(
                f"no node is labelled '{label}'" + (f": did you mean '{guess}'?" if guess else ""),
                span,
                expected="a label given with `as`: " + (", ".join(known) or "(the model has none)"),
            )
        for node in nodes:
            if node in weight_ops:
                chosen.add(node)
            elif graph.kind(node) == "op":
                chosen.update(flow.producers(node))
            else:
                chosen.update(n for n in graph.ops(node) if n in weight_ops)
    return chosen
