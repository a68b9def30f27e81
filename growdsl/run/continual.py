"""Continual learning: training on a task sequence (`data digits(tasks: split(5))`).

The tasks come one after another, `train.epochs` epochs each, through the ordinary training loop
(`loop.fit`) and the ordinary growth policy; what this module adds is the sequence:

- the model's output layer acts as one head per task: on task t only its classes' outputs enter
  the loss and the accuracy (`TrainState.head`);
- when task t > 0 starts, every neuron that exists is frozen (`growdsl.grow.freeze`): only
  neurons grown during task t, and the heads of task t and later, train; so old tasks' outputs
  never change;
- epochs are counted over the whole sequence (task t runs epochs `t·E + 1 ... (t+1)·E`), and so
  is the grow block's schedule and budget; a growth step due after a task's last epoch is made at
  the start of the next task, on that task's data (with `every N epochs`, this includes epoch 0:
  a step before the first task);
- the history gets a `task` line when a task starts (its classes, and `frozen`: how many first
  neurons of each weight op are old), a `task` key on every epoch line, and a `tasks_done` line
  with each task's test accuracy (its own head) and their average.

Growth in this mode adds brand-new neurons only: a split (of firefly or `split`) changes an old
neuron, and a new layer sits in every task's path, so either would change old tasks' outputs.
Everything the sequence needs to continue is in the checkpoint and the history, so `resume`
reproduces the uninterrupted run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from growdsl.errors import SpecError
from growdsl.grow.freeze import Freeze, weight_ops
from growdsl.grow.policy import GrowthPolicy
from growdsl.ir.dataflow import DataFlow
from growdsl.ir.graph import ArchGraph
from growdsl.lang.ast import GrowBlock, Spec
from growdsl.run.config import TrainConfig, build_optimizer, build_schedule
from growdsl.run.datasets import DataInfo, Splits
from growdsl.run.loop import TrainState, compute_loss, evaluate, fit
from growdsl.run.tasks import head


def total_epochs(config: TrainConfig, info: DataInfo) -> int:
    """Epochs of the whole run: `train.epochs` per task."""
    return config.epochs * (info.tasks.count if info.tasks else 1)


def output_layer(graph: ArchGraph, classes: int, spec: Spec) -> str:
    """The weight op whose `classes` outputs are the network's output: the per-task heads."""
    flow = DataFlow(graph)
    for node in reversed(weight_ops(graph)):
        if flow.reach(node).reaches_output and graph[node]["args"]["out"] == classes:
            return node
    raise SpecError(
        "with tasks, the model's output must come from a weight op with `classes` outputs (the heads)",
        spec.model.span if spec.model is not None else None,
        expected="a model ending in linear(classes)",
    )


def continual_policy(block: GrowBlock | None) -> GrowthPolicy | None:
    """The grow block's policy with every transform restricted to new neurons (see the module
    docstring): each transform says how (`Transform.continual`), or raises a SpecError."""
    if block is None:
        return None
    policy = GrowthPolicy.from_block(block)
    policy.transforms = [t.continual() for t in policy.transforms]
    return policy


def fit_tasks(
    spec: Spec,
    info: DataInfo,
    state: TrainState,
    tasks: list[Splits],
    config: TrainConfig,
    *,
    stop_at: int,
    log: Callable[[list[dict[str, Any]]], None],
    save: Callable[[TrainState], None],
    show_progress: bool = False,
) -> None:
    """Train the task sequence from `state.epoch` up to epoch `stop_at` (over the sequence)."""
    epochs, total = config.epochs, total_epochs(config, info)
    groups = info.tasks.groups(info.classes)
    heads = output_layer(state.graph, info.classes, spec)
    policy = continual_policy(spec.grow)
    for t, data in enumerate(tasks):
        start, end = t * epochs, (t + 1) * epochs
        if state.epoch >= end:
            continue
        if state.epoch >= stop_at:
            break
        state.head = head(groups[t])
        grow = _growth(policy, data, state.head, config, total)
        if state.epoch == start:
            old = {}
            if t:  # every neuron there is now, and the heads of the tasks before
                old = {n: state.graph[n]["args"]["out"] for n in weight_ops(state.graph)}
                old[heads] = state.head[0]
            line = {"event": "task", "task": t, "epoch": start, "classes": groups[t], "frozen": old}
            state.history.append(line)
            log([line])
        else:  # resumed inside task t: its freeze is in its task line
            old = next(r for r in state.history if r["event"] == "task" and r["task"] == t)["frozen"]
        freeze = Freeze(old)
        relay = functools.partial(_relay, freeze, bool(old))
        relay(state)
        if state.epoch == start and grow is not None:
            logged = len(state.history)
            grow(state, {})
            relay(state)
            log(state.history[logged:])
        after_epoch = functools.partial(_after_epoch, t, end, grow, relay)
        try:
            fit(state, data, config, stop_at=min(end, stop_at), log=log, save=save,
                after_epoch=(after_epoch,), show_progress=show_progress, run_epochs=total,
                warmup=policy.after.warmup if policy is not None else 0)  # fmt: skip
        finally:
            freeze.lift()
    state.head = None


def _after_epoch(
    task: int, end: int, grow: Callable | None, relay: Callable, state: TrainState, record: dict[str, Any]
) -> None:
    """Tag the epoch line with its task; grow when due, except after the task's last epoch (that
    step is made at the next task's start, on its data), and lay the freeze again after growth."""
    record["task"] = task
    if grow is not None and state.epoch < end:
        grow(state, record)
        relay(state)


def _relay(freeze: Freeze, active: bool, state: TrainState) -> None:
    """Lay the freeze on the state's model and optimizer when either changed (a growth step)."""
    if active and (freeze.model is not state.model or freeze.optimizer is not state.optimizer):
        freeze.lay(state.graph, state.model, state.optimizer)


def _growth(
    policy: GrowthPolicy | None, data: Splits, columns: tuple[int, int], config: TrainConfig, total: int
) -> Callable[[TrainState, dict[str, Any]], None] | None:
    """The policy's growth hook for one task: its training data, its head's loss."""
    if policy is None:
        return None
    lo, hi = columns
    return policy.hook(
        data.train,
        lambda out, y: compute_loss(config.loss, out[..., lo:hi], y),
        functools.partial(build_optimizer, config.optimizer),
        functools.partial(build_schedule, config.schedule),
        config.seed,
        total,
    )


def task_metrics(state: TrainState, info: DataInfo, tasks: list[Splits], loss: str) -> dict[str, Any]:
    """Each task's test loss and accuracy with its own head, and their means."""
    groups = info.tasks.groups(info.classes)
    results = [evaluate(state.model, data.test, loss, head(g)) for data, g in zip(tasks, groups, strict=True)]
    accs = [round(acc, 6) for _, acc in results]
    avg = round(sum(accs) / len(accs), 6)  # rounded like `accs`, for the tasks_done line
    return {
        "test_loss": sum(loss for loss, _ in results) / len(results),
        "test_acc": avg,
        "avg_acc": avg,
        "accs": accs,
    }
