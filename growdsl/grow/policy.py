"""The growth policy: when to grow, how far, and which candidates to take.

A `grow` block says when (`every N epochs`, `at epochs [...]`, `when plateau(patience: P)`; every
sixth of the run when it names none), how far (`until params|flops|steps > X`: upper bounds, never
exceeded) and with which transforms. Each growth step (`step.grow_step`), run after an epoch's
evaluation, collects scored candidates from every transform, and this module decides: greedily by
score per added parameter within each transform's limit, the ranges' high ends and the step's
share of the budget, the cost of each candidate counted exactly by applying its edit to a planned
graph. The step then applies the
chosen edits and carries the weights and the optimizer state over; every edit gets a `grow` line
in the history.

The policy keeps no state of its own: how many steps ran and when the loss last improved are
read from the run's history, so a resumed run grows exactly as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from growdsl import ir
from growdsl.errors import SpecError
from growdsl.grow.net import Net
from growdsl.grow.registry import KNOWN_TRANSFORMS, transform_factory
from growdsl.grow.step import grow_step
from growdsl.grow.transform import Candidate, Transform
from growdsl.ir.edits import Edit, Renames, Widen, apply_in_place, compose_renames, rename_edit, room
from growdsl.lang.ast import BUDGET_METRICS, AtEpochs, Every, GrowBlock, Name, Num, TransformStmt, Until, When
from growdsl.lang.suggest import not_implemented_message, unknown_name_message
from growdsl.lazy import torch
from growdsl.options import BadValue, Option, integer, number, read_options


def _choice(*names: str):  # noqa: ANN202 - a Check
    def check(value):  # noqa: ANN001, ANN202
        if isinstance(value, Name) and value.id in names:
            return value.id
        raise BadValue(" or ".join(names))

    return check


AFTER_GROWTH = "after_growth"  # the grow block's statement that says what follows a growth step
AFTER_GROWTH_OPTIONS = {
    "optimizer": Option("fresh", _choice("carry", "fresh"), "start a fresh optimizer, or carry its state"),
    "schedule": Option("restart", _choice("continue", "restart"), "restart the schedule, or continue it"),
    "finetune": Option(0, integer(0), "epochs of training at least between two growth steps"),
    "warmup": Option(0, integer(0), "batches of linear learning-rate warm-up after a growth step"),
}


@dataclass(frozen=True)
class AfterGrowth:
    """What follows a growth step: a fresh optimizer (`fresh`, the default: what the splitting,
    firefly and GradMax authors do) or the optimizer's state carried over (`carry`); the
    learning-rate schedule restarted over the epochs left (`restart`, the default, theirs) or
    continued (`continue`); at least `finetune` epochs of training before the next step; and a
    learning rate ramped up linearly over the `warmup` batches after a step (0: none;
    growdsl/run/warmup.py) (docs/language.md, "Growth policies"; the defaults' measurement in
    docs/benchmarks.md, "Growth defaults")."""

    optimizer: str = "fresh"
    schedule: str = "restart"
    finetune: int = 0
    warmup: int = 0


PLATEAU_OPTIONS = {
    "patience": Option(3, integer(1)),
    "min_delta": Option(0.0, number(0.0)),
    "rel": Option(0.0, number(0.0), "an improvement must exceed this fraction of the best loss"),
    "smooth": Option(1, integer(1), "epochs in the trailing mean of the training loss the test reads"),
}


@dataclass(frozen=True)
class Schedule:
    """When growth steps happen: `every` N epochs, `at` listed epochs, on a `plateau` of the
    training loss (its trailing mean over `smooth` epochs has not improved on its best by more
    than `min_delta` and `rel` × the best for `patience` epochs), or, the default, every
    ceil(E / `periods`) epochs of a run of E epochs (`for_run` makes that a period)."""

    periods: int | None = None
    every: int | None = None
    at: tuple[int, ...] = ()
    patience: int | None = None
    min_delta: float = 0.0
    rel: float = 0.0
    smooth: int = 1
    finetune: int = 0  # epochs at least between two steps (`after_growth(finetune: N)`)

    def for_run(self, epochs: int) -> Schedule:
        """This schedule in a run of `epochs` epochs: the default's share of the run as a period."""
        if self.periods is None:
            return self
        return dataclasses.replace(self, periods=None, every=max(1, math.ceil(epochs / self.periods)))

    def due(self, epoch: int, history: list[dict[str, Any]]) -> bool:
        self._resolved()
        last_grow = max((r["epoch"] for r in history if r["event"] == "grow"), default=None)
        if last_grow is not None and epoch - last_grow < max(self.finetune, 1):
            return False
        if self.every is not None:
            return epoch % self.every == 0
        if self.at:
            return epoch in self.at
        return _epochs_without_improvement(history, self) >= (self.patience or 1)

    def remaining(self, epoch: int, last_epoch: int) -> int | None:
        """Growth steps left from `epoch` on (this one included), or None when unknown (plateau)."""
        self._resolved()
        if self.every is not None:
            return len(range(epoch, last_epoch, self.every)) if epoch % self.every == 0 else None
        if self.at:
            return sum(1 for e in self.at if epoch <= e < last_epoch)
        return None

    def _resolved(self) -> None:
        if self.periods is not None:
            raise ValueError("the default schedule's period depends on the run: use for_run(epochs)")


# A grow block that names no schedule grows every ceil(E / 6) epochs of a run of E epochs: at most
# five steps, the last sixth of the run left to train the final net. A run has a fixed epoch
# budget, and within one growth at convergence (the papers' protocol, `when plateau(patience: 3,
# rel: 0.01, smooth: 3)`) grew late and little and lost to a fixed period on both tasks measured
# (docs/benchmarks.md, "Growth defaults").
DEFAULT_SCHEDULE = Schedule(periods=6)


def _epochs_without_improvement(history: list[dict[str, Any]], schedule: Schedule) -> int:
    """Epochs since the trailing mean of the training loss last improved on its best by more
    than `min_delta` and `rel` × the best, counting only epochs after the last growth step (a
    grown net starts a fresh plateau)."""
    last_grow = max((r["epoch"] for r in history if r["event"] == "grow"), default=0)
    losses = [r["loss"] for r in history if r["event"] == "epoch" and r["epoch"] > last_grow]
    best, since = math.inf, 0
    for i in range(len(losses)):
        window = losses[max(0, i + 1 - schedule.smooth) : i + 1]
        loss = sum(window) / len(window)
        if best == math.inf or loss < best - max(schedule.min_delta, schedule.rel * abs(best)):
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
    after: AfterGrowth = AfterGrowth()

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
        after = _after_growth([s for s in block.statements if isinstance(s, TransformStmt)])
        schedule = _schedule(schedules[0]) if schedules else DEFAULT_SCHEDULE
        schedule = dataclasses.replace(schedule, finetune=after.finetune)
        budget = _budget([s for s in block.statements if isinstance(s, Until)])
        calls = [s for s in block.statements if isinstance(s, TransformStmt) and s.call.name != AFTER_GROWTH]
        transforms = [_transform(s) for s in calls]
        if not transforms:
            raise SpecError(
                "this grow block names no transform",
                block.span,
                expected="a transform such as split(frac: 0.25)",
            )
        return cls(schedule, budget, transforms, after)

    def for_run(self, epochs: int) -> GrowthPolicy:
        """This policy in a run of `epochs` epochs (the default schedule's period resolved)."""
        return dataclasses.replace(self, schedule=self.schedule.for_run(epochs))

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
        cost = _CostCache(net.graph)
        pool = [(t, c) for t, cands in candidates.items() for c in cands if c.score > 0]
        pool.sort(key=lambda tc: tc[1].score / max(cost(tc[1].edit)[0], 1), reverse=True)
        taken: list[list[Candidate]] = [[] for _ in self.transforms]
        limits = [t.limit(net) for t in self.transforms]
        planned = _PlannedGrowth(net.graph, share)
        for t, cand in pool:
            if limits[t] is not None and len(taken[t]) >= limits[t]:
                continue
            if planned.take(cand.edit, cost(cand.edit)):
                taken[t].append(cand)
        return taken

    def hook(
        self,
        train: tuple[torch.Tensor, torch.Tensor],
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        make_optimizer: Callable[[Any], torch.optim.Optimizer],
        make_schedule: Callable[[torch.optim.Optimizer, int], Any],
        seed: int,
        epochs: int,
    ) -> Callable[[Any, dict[str, Any]], None]:
        """The `after_epoch` callable of the training loop (`growdsl.run.loop.fit`): a growth step
        (`step.grow_step`) when the schedule says so. Growth draws its samples from its own
        generator, seeded by the run's seed and the epoch."""

        policy = self.for_run(epochs)

        def after_epoch(state: Any, _record: dict[str, Any]) -> None:
            if state.epoch >= epochs or not policy.schedule.due(state.epoch, state.history):
                return
            rng = torch.Generator().manual_seed(seed * 100_003 + state.epoch)
            grow_step(
                state,
                policy,
                train,
                rng,
                loss_fn=loss_fn,
                make_optimizer=make_optimizer,
                make_schedule=make_schedule,
                last_epoch=epochs,
            )

        return after_epoch


class _CostCache:
    """Params and FLOPs each edit adds to the step's starting graph, alone; widenings of a layer
    by the same number of neurons cost the same, so they are counted once."""

    def __init__(self, graph: ir.ArchGraph) -> None:
        self.graph = graph
        self.known: dict[Edit, tuple[int, int]] = {}

    def __call__(self, edit: Edit) -> tuple[int, int]:
        key = Widen(edit.node, (None,) * len(edit.added)) if isinstance(edit, Widen) else edit
        if key not in self.known:
            self.known[key] = ir.added_cost(self.graph, key)
        return self.known[key]


class _PlannedGrowth:
    """The candidates taken so far, applied to a copy of the graph: their edits are checked
    against the ranges there (two widenings of one layer share its range), and their cost is the
    exact difference the planned graph makes (two widened layers in a row add more than their
    costs measured alone: the consumer's new input columns for the producer's new neurons)."""

    def __init__(self, graph: ir.ArchGraph, share: Budget) -> None:
        self.share = share
        self.graph = graph.copy()
        self.capped = share.params is not None or share.flops is not None
        self.base = (ir.param_count(graph), ir.flops(graph)) if self.capped else (0, 0)
        self.added = (0, 0)
        self.renames: Renames = {}

    def take(self, edit: Edit, alone: tuple[int, int]) -> bool:
        """Plan `edit` (its own cost `alone`) if the ranges and the step's share allow it; False,
        and nothing planned, otherwise."""
        edit = rename_edit(edit, self.renames)
        if not room(self.graph, edit):
            return False
        if not self.capped:
            self.renames = compose_renames(self.renames, apply_in_place(self.graph, edit))
            return True
        # a widening never adds less than it costs alone: a cheap test before the exact one
        if isinstance(edit, Widen) and not self._fits((self.added[0] + alone[0], self.added[1] + alone[1])):
            return False
        trial = self.graph.copy()
        renames = apply_in_place(trial, edit)
        added = (ir.param_count(trial) - self.base[0], ir.flops(trial) - self.base[1])
        if not self._fits(added):
            return False
        self.graph, self.added = trial, added
        self.renames = compose_renames(self.renames, renames)
        return True

    def _fits(self, added: tuple[int, int]) -> bool:
        params, flops = self.share.params, self.share.flops
        return (params is None or added[0] <= params) and (flops is None or added[1] <= flops)


def _after_growth(stmts: list[TransformStmt]) -> AfterGrowth:
    """The block's `after_growth(...)` statement (at most one), validated; the default without."""
    given = [s for s in stmts if s.call.name == AFTER_GROWTH]
    if len(given) > 1:
        raise SpecError("a grow block has one after_growth(...)", given[1].call.span)
    if not given:
        return AfterGrowth()
    return AfterGrowth(**read_options(given[0].call, AFTER_GROWTH_OPTIONS, "after_growth option"))


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
    return Schedule(
        patience=opts["patience"], min_delta=opts["min_delta"], rel=opts["rel"], smooth=opts["smooth"]
    )


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
    factory = transform_factory(name)
    if factory is not None:
        return factory(stmt.call)
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
