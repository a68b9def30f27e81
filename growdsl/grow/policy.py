"""The growth policy: when to grow, how far, and which candidates to take.

A `grow` block says when (`every N epochs`, `at epochs [...]`, `when plateau(patience: P)`), how
far (`until params|flops|steps > X`: upper bounds, never exceeded) and with which transforms.
Each growth step, run after an epoch's evaluation, collects scored candidates from every
transform, takes them greedily by score per added parameter within each transform's limit, the
ranges' high ends and the step's share of the budget, applies them, rebuilds the module and
carries the optimizer state over; every changed node gets a `grow` line in the history.

The policy keeps no state of its own: how many steps ran and when the loss last improved are
read from the run's history, so a resumed run grows exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from growdsl import ir
from growdsl.errors import SpecError
from growdsl.grow.carry import carried_optimizer
from growdsl.grow.firefly import FireflyTransform
from growdsl.grow.guard import propose_finite
from growdsl.grow.net import Net
from growdsl.grow.split import SplitTransform
from growdsl.grow.transform import Candidate, Transform
from growdsl.lang.ast import BUDGET_METRICS, AtEpochs, Every, GrowBlock, Num, TransformStmt, Until, When
from growdsl.lang.suggest import not_implemented_message, unknown_name_message
from growdsl.options import Option, integer, number, read_options

# The transforms of LANGUAGE.md; those with a factory in IMPLEMENTED_TRANSFORMS can run.
KNOWN_TRANSFORMS: dict[str, str] = {
    "split": "splitting steepest descent",
    "firefly": "firefly descent",
    "pathlevel": "path-level network transformation",
}
TransformFactory = Callable[[Any], Transform]
IMPLEMENTED_TRANSFORMS: dict[str, TransformFactory] = {
    "split": SplitTransform.from_call,
    "firefly": FireflyTransform.from_call,
}

PLATEAU_OPTIONS = {
    "patience": Option(3, integer(1)),
    "min_delta": Option(0.0, number(0.0)),
}


@dataclass(frozen=True)
class Schedule:
    """When growth steps happen: `every` N epochs, `at` listed epochs, or on a `plateau` of the
    training loss (no improvement by more than `min_delta` for `patience` epochs)."""

    every: int | None = None
    at: tuple[int, ...] = ()
    patience: int | None = None
    min_delta: float = 0.0

    def due(self, epoch: int, history: list[dict[str, Any]]) -> bool:
        if self.every is not None:
            return epoch % self.every == 0
        if self.at:
            return epoch in self.at
        return _epochs_without_improvement(history, self.min_delta) >= (self.patience or 1)

    def remaining(self, epoch: int, last_epoch: int) -> int | None:
        """Growth steps left from `epoch` on (this one included), or None when unknown (plateau)."""
        if self.every is not None:
            return len(range(epoch, last_epoch, self.every)) if epoch % self.every == 0 else None
        if self.at:
            return sum(1 for e in self.at if epoch <= e < last_epoch)
        return None


def _epochs_without_improvement(history: list[dict[str, Any]], min_delta: float) -> int:
    """Epochs since the training loss last improved by more than `min_delta`, counting only
    epochs after the last growth step (a grown net starts a fresh plateau)."""
    last_grow = max((r["epoch"] for r in history if r["event"] == "grow"), default=0)
    losses = [r["loss"] for r in history if r["event"] == "epoch" and r["epoch"] > last_grow]
    best, since = math.inf, 0
    for loss in losses:
        if loss < best - min_delta:
            best, since = loss, 0
        else:
            since += 1
    return since


@dataclass(frozen=True)
class Budget:
    """Upper bounds: growth never takes params, FLOPs or the number of steps past them."""

    params: int | None = None
    flops: int | None = None
    steps: int | None = None


@dataclass
class GrowthPolicy:
    schedule: Schedule
    budget: Budget
    transforms: list[Transform]

    @classmethod
    def from_block(cls, block: GrowBlock) -> GrowthPolicy:
        """Validate a `grow` block; every mistake is a SpecError at its place."""
        schedules = [s for s in block.statements if isinstance(s, (Every, AtEpochs, When))]
        if len(schedules) > 1:
            raise SpecError(
                "a grow block has one schedule",
                schedules[1].span,
                hint=f"the first is at {schedules[0].span}",
            )
        schedule = _schedule(schedules[0]) if schedules else Schedule(every=1)
        budget = _budget([s for s in block.statements if isinstance(s, Until)])
        transforms = [_transform(s) for s in block.statements if isinstance(s, TransformStmt)]
        if not transforms:
            raise SpecError(
                "this grow block names no transform",
                block.span,
                expected="a transform such as split(frac: 0.25)",
            )
        return cls(schedule, budget, transforms)

    # ------------------------------------------------------------ one step

    def step_budget(self, graph: ir.ArchGraph, epoch: int, last_epoch: int, steps_done: int) -> Budget | None:
        """What this step may add (params, FLOPs), or None when no step may run now."""
        if self.budget.steps is not None and steps_done >= self.budget.steps:
            return None
        left = self.schedule.remaining(epoch, last_epoch)
        if self.budget.steps is not None and left is not None:
            left = min(left, self.budget.steps - steps_done)
        share = []
        for cap, now in ((self.budget.params, ir.param_count(graph)), (self.budget.flops, ir.flops(graph))):
            if cap is None:
                share.append(None)
            elif now >= cap:
                return None
            else:
                share.append((cap - now) // (left or 1))
        return Budget(share[0], share[1])

    def select(
        self, net: Net, candidates: dict[int, list[Candidate]], share: Budget
    ) -> list[list[Candidate]]:
        """Greedy by score per added parameter: within each transform's limit, the nodes' ranges and
        the step's share of the budget; only candidates predicted to lower the loss."""
        pool = [(t, c) for t, cands in candidates.items() for c in cands if c.score > 0]
        pool.sort(key=lambda tc: tc[1].score / max(tc[1].params, 1), reverse=True)
        taken: list[list[Candidate]] = [[] for _ in self.transforms]
        limits = [t.limit(net) for t in self.transforms]
        room: dict[str, int] = {}
        planned = _PlannedGrowth(net.graph, share)
        for t, cand in pool:
            if limits[t] is not None and len(taken[t]) >= limits[t]:
                continue
            node_room = room.setdefault(cand.node, _room(net.graph, cand.node))
            grows = cand.depth if cand.depth else cand.width
            if grows > node_room or not planned.take(cand):
                continue
            taken[t].append(cand)
            room[cand.node] = node_room - grows
        return taken

    def hook(
        self,
        train: tuple[torch.Tensor, torch.Tensor],
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        make_optimizer: Callable[[Any], torch.optim.Optimizer],
        make_schedule: Callable[[torch.optim.Optimizer], Any],
        seed: int,
        epochs: int,
    ) -> Callable[[Any, dict[str, Any]], None]:
        """The `after_epoch` callable of the training loop (`growdsl.run.loop.fit`); growth draws
        its samples from its own generator, seeded by the run's seed and the epoch."""

        def after_epoch(state: Any, _record: dict[str, Any]) -> None:
            epoch = state.epoch
            if epoch >= epochs or not self.schedule.due(epoch, state.history):
                return
            steps_done = len({r["epoch"] for r in state.history if r["event"] == "grow"})
            share = self.step_budget(state.graph, epoch, epochs, steps_done)
            if share is None:
                return
            net = Net(state.graph, state.model)
            rng = torch.Generator().manual_seed(seed * 100_003 + epoch)
            candidates, skipped = propose_finite(self.transforms, net, train, loss_fn, rng, epoch)
            state.history.extend(skipped)  # non-finite statistics skip a transform (grow/guard.py)
            chosen = self.select(net, candidates, share)
            maps, records = [], []
            for transform, picks in zip(self.transforms, chosen, strict=True):
                if picks:
                    applied = transform.apply(net, picks)
                    net = applied.net
                    maps.extend(applied.index_maps)
                    records.extend(applied.records)
            if not records:
                return
            optimizer = carried_optimizer(state.optimizer, state.model, net.model, maps, make_optimizer)
            scheduler = make_schedule(optimizer)
            if scheduler is not None and state.scheduler is not None:
                scheduler.load_state_dict(state.scheduler.state_dict())
            state.graph, state.model, state.optimizer, state.scheduler = (
                net.graph,
                net.model,
                optimizer,
                scheduler,
            )
            state.history.extend(_history_line(epoch, r) for r in records)

        return after_epoch


class _PlannedGrowth:
    """What the candidates taken so far add, counted exactly: two widened layers in a row add more
    than their costs measured alone (the consumer's new input columns for the producer's new
    neurons), so widths are planned on a copy of the graph and the budget charged the true
    difference. A new layer's cost is its own (`Candidate.params`, `.flops`)."""

    def __init__(self, graph: ir.ArchGraph, share: Budget) -> None:
        self.share = share
        self.graph = graph.copy() if share.params is not None or share.flops is not None else None
        self.base = (ir.param_count(graph), ir.flops(graph)) if self.graph is not None else (0, 0)
        self.widened = (0, 0)  # what the planned widths add (exact)
        self.deepened = (0, 0)  # what planned new layers add (their own cost)

    def take(self, cand: Candidate) -> bool:
        """Plan `cand` if the step's share allows it; False (and nothing planned) otherwise."""
        if self.graph is None:
            return True
        lower = (
            self.widened[0] + self.deepened[0] + cand.params,
            self.widened[1] + self.deepened[1] + cand.flops,
        )
        if not self._fits(lower):  # the candidate's own cost never exceeds what it really adds
            return False
        if cand.depth:
            self.deepened = (self.deepened[0] + cand.params, self.deepened[1] + cand.flops)
            return True
        args = self.graph[cand.node]["args"]
        args["out"] += cand.width
        widened = (ir.param_count(self.graph) - self.base[0], ir.flops(self.graph) - self.base[1])
        total = (widened[0] + self.deepened[0], widened[1] + self.deepened[1])
        if not self._fits(total):
            args["out"] -= cand.width
            return False
        self.widened = widened
        return True

    def _fits(self, added: tuple[int, int]) -> bool:
        params, flops = self.share.params, self.share.flops
        return (params is None or added[0] <= params) and (flops is None or added[1] <= flops)


GROW_LINE_KEYS = ("transform", "node", "params_before", "params_after", "score")


def _history_line(epoch: int, record: dict[str, Any]) -> dict[str, Any]:
    """One `grow` line of history.jsonl, in the one format every transform shares: the fixed keys
    first, whatever else the transform reports under `detail`."""
    detail = {k: v for k, v in record.items() if k not in GROW_LINE_KEYS and k != "detail"}
    return {
        "event": "grow",
        "epoch": epoch,
        **{k: record[k] for k in GROW_LINE_KEYS},
        "detail": {**record.get("detail", {}), **detail},
    }


def _room(graph: ir.ArchGraph, node: str) -> int:
    """How much `node` may still grow: neurons up to its width range's high end, or copies up to
    its repeat's high end; 0 where it has no range."""
    attrs = graph[node]
    if attrs.get("width"):
        return attrs["width"][1] - attrs["args"]["out"]
    if attrs.get("depth"):
        return attrs["depth"][1] - len(graph.children(node))
    return 0


def _schedule(stmt: Every | AtEpochs | When) -> Schedule:
    if isinstance(stmt, Every):
        n = stmt.epochs.value
        if not isinstance(n, int) or n < 1:
            raise SpecError("`every` takes a whole number of epochs, at least 1", stmt.epochs.span)
        return Schedule(every=n)
    if isinstance(stmt, AtEpochs):
        values = [v.value for v in stmt.epochs.items if hasattr(v, "value")]
        if (
            not values
            or len(values) != len(stmt.epochs.items)
            or any(not isinstance(v, int) or v < 1 for v in values)
        ):
            raise SpecError("`at epochs` takes a list of epochs, each a whole number >= 1", stmt.epochs.span)
        return Schedule(at=tuple(sorted(set(values))))
    if stmt.trigger.name != "plateau":
        raise SpecError(
            unknown_name_message("growth trigger", stmt.trigger.name, ["plateau"]),
            stmt.trigger.span,
            expected="plateau(patience: 3)",
        )
    opts = read_options(stmt.trigger, PLATEAU_OPTIONS, "plateau option")
    return Schedule(patience=opts["patience"], min_delta=opts["min_delta"])


def _budget(stmts: list[Until]) -> Budget:
    caps: dict[str, int] = {}
    for stmt in stmts:
        if stmt.metric not in BUDGET_METRICS:
            raise SpecError(
                unknown_name_message("budget", stmt.metric, BUDGET_METRICS),
                stmt.span,
                expected="until params|flops|steps > NUMBER",
            )
        if stmt.op not in (">", ">="):
            raise SpecError(
                f"a budget is an upper bound: `until {stmt.metric} > X` (not {stmt.op})", stmt.span
            )
        if stmt.metric in caps:
            raise SpecError(f"budget '{stmt.metric}' is given twice", stmt.span)
        value = stmt.value.value
        if value <= 0:
            raise SpecError("a budget must be positive", stmt.value.span)
        # `until params > X` stops before params pass X; `>= X` stops before they reach it
        caps[stmt.metric] = math.floor(value) if stmt.op == ">" else math.ceil(value) - 1
    return Budget(caps.get("params"), caps.get("flops"), caps.get("steps"))


def _transform(stmt: TransformStmt) -> Transform:
    name = stmt.call.name
    eps = stmt.call.keywords.get("eps")
    if isinstance(eps, Num) and eps.value == 0:
        raise SpecError(
            "eps: 0 makes every candidate's predicted loss decrease 0, so nothing would grow",
            eps.span,
            hint="use a small positive eps such as 0.01 (the function then changes by O(eps))",
        )
    if name in IMPLEMENTED_TRANSFORMS:
        return IMPLEMENTED_TRANSFORMS[name](stmt.call)
    if name in KNOWN_TRANSFORMS:
        raise SpecError(
            not_implemented_message("growth transform", name, KNOWN_TRANSFORMS[name]),
            stmt.call.span,
            hint="remove it (or the grow block) to train without it",
        )
    raise SpecError(unknown_name_message("growth transform", name, KNOWN_TRANSFORMS), stmt.call.span)


def check_grow(block: GrowBlock | None, graph: ir.ArchGraph | None = None) -> None:
    """Raise a SpecError for a grow block this version cannot run, or (given the lowered model)
    whose transforms do not fit the model."""
    if block is None:
        return
    policy = GrowthPolicy.from_block(block)
    if graph is not None:
        for transform in policy.transforms:
            transform.check(graph)
