"""`on_divergence rollback(retries: N, factor: f)`: a diverged epoch is undone, not the run.

When an epoch's mean training loss is NaN or infinite (`loop.fit` raises DivergenceError before
anything of the epoch is logged or saved), `train_member` goes back to the last good state (the
state after the last good epoch, kept in memory: exactly what the run's checkpoint holds) and
multiplies the learning rate by `factor`: the optimizer's param groups, the schedule's base rates
(so a schedule goes on at the smaller scale), and the rate a growth step's fresh optimizer gets.
The rollback is a history line,

    {"event": "rollback", "epoch": 7, "loss": null, "nonfinite": ["loss"], "kept_epoch": 6,
     "retry": 1, "retries": 3, "lr_scale": 0.1}

and everything it changes is derived from the history (the rollbacks so far give the scale, and
the count left), so a run killed after a rollback and resumed goes on exactly as the uninterrupted
one: a rollback not yet in a checkpoint is simply done again. `retries` bounds the rollbacks over
the whole run (a search member: over its life, its history travelling with it); once they are
spent, the next divergence stops the run as `on_divergence stop` does (exit code 3, docs/cli.md).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from growdsl.errors import DivergenceError
from growdsl.lazy import torch
from growdsl.run.config import Method, TrainConfig

EVENT = "rollback"


def rollbacks(history: list[dict[str, Any]]) -> int:
    """How many rollbacks the run has made so far."""
    return sum(1 for r in history if r.get("event") == EVENT)


def lr_scale(config: TrainConfig, history: list[dict[str, Any]]) -> float:
    """The factor the spec's learning rate is multiplied by after the history's rollbacks."""
    if config.on_divergence.name != "rollback":
        return 1.0
    return config.on_divergence.kwargs["factor"] ** rollbacks(history)


def scaled_config(config: TrainConfig, scale: float) -> TrainConfig:
    """`config` with the optimizer's learning rate times `scale`, and a cosine schedule's floor
    `min_lr` with it (what a growth step's fresh optimizer and restarted schedule are built with:
    an unscaled floor would anneal the smaller rate back up towards it)."""
    if scale == 1.0:
        return config
    kwargs = {**config.optimizer.kwargs, "lr": config.optimizer.kwargs["lr"] * scale}
    schedule = config.schedule
    if "min_lr" in schedule.kwargs:
        schedule = Method(schedule.name, {**schedule.kwargs, "min_lr": schedule.kwargs["min_lr"] * scale})
    return dataclasses.replace(config, optimizer=Method(config.optimizer.name, kwargs), schedule=schedule)


def snapshot(payload: dict[str, Any]) -> dict[str, Any]:
    """A copy of a state's payload that training cannot change (its tensors are the live ones)."""
    return copy.deepcopy(payload)


def rollback_line(config: TrainConfig, history: list[dict[str, Any]], error: DivergenceError, kept: int):
    """The history line of the rollback `error` calls for, or None when the spec says stop or the
    retries are spent."""
    if config.on_divergence.name != "rollback":
        return None
    done, retries = rollbacks(history), config.on_divergence.kwargs["retries"]
    if done >= retries:
        return None
    scale = config.on_divergence.kwargs["factor"] ** (done + 1)
    return {"event": EVENT, "epoch": error.epoch, "loss": error.loss, "kept_epoch": kept,
            "retry": done + 1, "retries": retries, "lr_scale": scale}  # fmt: skip


def scale_learning_rate(
    optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler | None, factor: float
) -> None:
    """Multiply the learning rate by `factor` where it lives: each param group's rate (and its
    `initial_lr`, a schedule's starting point), the schedule's base rates and a cosine schedule's
    floor `eta_min` (it anneals from the current rate towards the floor, so an unscaled floor
    pulls the rate back up to the spec's `min_lr`)."""
    for group in optimizer.param_groups:
        group["lr"] *= factor
        if "initial_lr" in group:
            group["initial_lr"] *= factor
    if scheduler is not None:
        scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]
        if hasattr(scheduler, "eta_min"):
            scheduler.eta_min *= factor
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def describe(line: dict[str, Any]) -> str:
    """The rollback line as a sentence for the person watching the progress bar."""
    return (
        f"epoch {line['epoch']} diverged (training loss {line['loss']}): rolled back to epoch "
        f"{line['kept_epoch']}, learning rate x{line['lr_scale']:g} (rollback {line['retry']} of "
        f"{line['retries']})"
    )
