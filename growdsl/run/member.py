"""Training a member: one function trains a net from a checkpoint payload, anywhere.

A checkpoint payload (`TrainState.checkpoint_payload` plus the spec text and the device: graph
JSON, weights, optimizer and schedule state, RNG states, epoch, history) is the one exchange
format between whoever decides and whoever trains. `train_member(payload, data, config, epochs)`
rebuilds the training state from it, trains (and grows, given a `grow` block) for some epochs and
returns the new payload with its metrics. The single run's loop calls it in process (with its
history log and checkpoints); a population's workers can call it in other processes, since the
payload and the data are plain tensors and data (docs/architecture.md, "Training members").
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

from growdsl import ir
from growdsl.compile import compile_graph
from growdsl.errors import DivergenceError
from growdsl.grow.policy import GrowthPolicy
from growdsl.lang.ast import GrowBlock
from growdsl.lazy import torch
from growdsl.run import rollback
from growdsl.run.checkpoint import restore_rng_states
from growdsl.run.config import TrainConfig, build_optimizer, build_schedule, resolve_device
from growdsl.run.datasets import Splits
from growdsl.run.loop import TrainState, compute_loss, fit, seed_everything, to_device
from growdsl.run.precision import make_scaler
from growdsl.run.progress import notice

Payload = dict[str, Any]


def state_from_payload(payload: Payload, config: TrainConfig, device: torch.device, total: int) -> TrainState:
    """The training state a payload holds, on `device`; RNG states restored, so training goes on
    exactly as it would have (`total` is the run's epoch count the schedule spans)."""
    graph = ir.from_json(payload["graph"])
    model = compile_graph(graph)
    model.load_state_dict(payload["model"])
    model.to(device)
    optimizer = build_optimizer(config.optimizer, model.parameters())
    # a copy: torch's load_state_dict keeps the payload's tensors as the optimizer's state, and
    # training updates momentum in place, which would change the payload a caller still holds
    optimizer.load_state_dict(copy.deepcopy(payload["optimizer"]))
    scheduler = build_schedule(config.schedule, optimizer, total)
    if scheduler is not None:
        scheduler.load_state_dict(payload["scheduler"])
    shuffle = torch.Generator()
    restore_rng_states(payload["rng"], shuffle)
    scaler = make_scaler(config.precision, device, payload.get("scaler"))  # absent before fp16 existed
    return TrainState(
        graph, model, optimizer, scheduler, shuffle, payload["epoch"], list(payload["history"]), scaler=scaler
    )


def initial_payload(
    graph: ir.ArchGraph, config: TrainConfig, seed: int, total: int, extra: dict[str, Any] | None = None
) -> Payload:
    """The epoch-0 payload of a new net for `graph`: every generator seeded by `seed` (torch's
    default initialisation drawn from it), a fresh optimizer and schedule (spanning `total`
    epochs), no history; `extra` entries (the spec text, the device) added."""
    shuffle = seed_everything(seed)
    model = compile_graph(graph)
    optimizer = build_optimizer(config.optimizer, model.parameters())
    scheduler = build_schedule(config.schedule, optimizer, total)
    scaler = make_scaler(config.precision, torch.device("cpu"))  # its state holds no tensor, no device
    state = TrainState(graph, model, optimizer, scheduler, shuffle, scaler=scaler)
    return {**state.checkpoint_payload(), **(extra or {})}


def growth_warmup(grow: GrowBlock | None) -> int:
    """The batches of learning-rate warm-up after a growth step (`after_growth(warmup: N)`)."""
    return 0 if grow is None else GrowthPolicy.from_block(grow).after.warmup


def growth_hooks(grow: GrowBlock | None, data: Splits, config: TrainConfig) -> tuple:
    """The growth policy's after-epoch hook for a `grow` block (none without one)."""
    if grow is None:
        return ()
    policy = GrowthPolicy.from_block(grow)
    hook = policy.hook(
        data.train,
        functools.partial(compute_loss, config.loss),
        functools.partial(build_optimizer, config.optimizer),
        functools.partial(build_schedule, config.schedule),
        config.seed,
        config.epochs,
    )
    return (hook,)


def train_member(
    payload: Payload,
    data: Splits,
    config: TrainConfig,
    epochs: int,
    *,
    grow: GrowBlock | None = None,
    device: str | torch.device | None = None,
    log: Callable[[list[dict[str, Any]]], None] | None = None,
    save: Callable[[TrainState], None] | None = None,
    show_progress: bool = False,
) -> tuple[Payload, dict[str, Any]]:
    """Train the net of `payload` for `epochs` more epochs (never past `config.epochs`), growing it
    as `grow` says; `log` receives each epoch's new history lines and `save` the state after each
    epoch. Returns the payload after training (spec and device entries kept) and the metrics of
    its last epoch line (loss, held-out accuracy and loss, params, FLOPs; `{}` if none ran).
    `device` defaults to the payload's, then `config.device`."""
    dev = resolve_device(str(device or payload.get("device") or config.device))
    state = state_from_payload(payload, config, dev, config.epochs)
    data = to_device(data, dev)
    stop_at = min(config.epochs, state.epoch + epochs)
    log = log or (lambda _records: None)
    rolls_back = config.on_divergence.name == "rollback"
    good = payload  # the state after the last good epoch (growdsl/run/rollback.py)

    def save_good(trained: TrainState) -> None:
        nonlocal good
        if rolls_back:  # a copy an epoch only when the spec asks for rollbacks
            good = rollback.snapshot(trained.checkpoint_payload())
        if save is not None:
            save(trained)

    while True:
        grown = rollback.scaled_config(config, rollback.lr_scale(config, state.history))
        try:
            fit(state, data, config, stop_at=stop_at, log=log, save=save_good,
                after_epoch=growth_hooks(grow, data, grown), show_progress=show_progress,
                warmup=growth_warmup(grow))  # fmt: skip
            break
        except DivergenceError as error:
            line = rollback.rollback_line(config, state.history, error, good["epoch"])
            if line is None:
                raise
            state = state_from_payload(good, config, dev, config.epochs)
            rollback.scale_learning_rate(
                state.optimizer, state.scheduler, config.on_divergence.kwargs["factor"]
            )
            state.history.append(line)
            good = rollback.snapshot(state.checkpoint_payload())  # the next rollback starts from here
            log([line])
            notice(show_progress, rollback.describe(line))
    extra = {k: v for k, v in payload.items() if k in ("spec", "device")}
    last = next((r for r in reversed(state.history) if r["event"] == "epoch"), None)
    metrics = {k: v for k, v in (last or {}).items() if k not in ("event", "time")}
    return {**state.checkpoint_payload(), **extra}, metrics
