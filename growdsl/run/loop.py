"""The training loop: seeded, index-batched epochs, one evaluation per epoch, one history line each.

Everything that changes during a run lives in one `TrainState`, which is exactly what a
checkpoint saves and `resume` restores; so a resumed run draws the same batches and the same
dropout masks as an uninterrupted one, and ends with bitwise the same weights on the CPU.

Growth joins here through `after_epoch`: callables run once after each epoch's evaluation, with
the state (they may replace `graph`, `model`, `optimizer`) and the epoch's history record.

How a batch runs (precision, memory format, `torch.compile`) is `growdsl/run/execution.py`'s job;
the loop only asks it for the outputs and hands it the backward pass.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from growdsl import ir
from growdsl.errors import DivergenceError
from growdsl.grow import collective
from growdsl.ir.graph import ArchGraph
from growdsl.lazy import F, nn, no_grad, np, torch
from growdsl.run import distributed
from growdsl.run.batches import eval_batches, training_batches
from growdsl.run.checkpoint import rng_states
from growdsl.run.config import TrainConfig
from growdsl.run.datasets import Pair, Splits
from growdsl.run.execution import Execution
from growdsl.run.precision import backward_and_step
from growdsl.run.progress import TrainingProgress
from growdsl.run.warmup import scaled_lr, warmup_factors

EVAL_BATCH = 1024
PROGRESS_EVERY = 10  # steps between live loss readings: each one syncs a GPU


@dataclass
class TrainState:
    """What a run holds between epochs; `epoch` counts the epochs completed."""

    graph: ArchGraph
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    shuffle: torch.Generator
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    head: tuple[int, int] | None = None  # continual learning: the current task's output columns
    scaler: Any = None  # fp16's gradient scaler (growdsl/run/precision.py), None otherwise

    def checkpoint_payload(self) -> dict[str, Any]:
        """The state as weights_only-safe data (the caller adds the spec text)."""
        return {
            "epoch": self.epoch,
            "graph": ir.to_json(self.graph),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": rng_states(self.shuffle),
            "history": self.history,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
        }


AfterEpoch = Callable[[TrainState, dict[str, Any]], None]


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch, Python and NumPy; return the generator that shuffles the training set."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    return torch.Generator().manual_seed(seed)


def compute_loss(name: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """`cross_entropy` on class indices; `mse` on float targets, or on one-hot class indices."""
    if name == "cross_entropy":
        return F.cross_entropy(out, y)
    target = F.one_hot(y, out.shape[-1]).to(out.dtype) if not y.is_floating_point() else y.view_as(out)
    return F.mse_loss(out, target)


def outputs(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, head: tuple[int, int] | None = None
) -> torch.Tensor:
    """The outputs of `model` (a module, or anything that runs one), or only the columns `[lo, hi)`
    of a task's head (a multi-head task compares its own classes' logits only)."""
    out = model(x)
    return out if head is None else out[..., head[0] : head[1]]


@no_grad
def evaluate(
    model: nn.Module,
    pair: Pair,
    loss_name: str,
    head: tuple[int, int] | None = None,
    execution: Execution | None = None,
) -> tuple[float, float | None]:
    """(mean loss, accuracy) on a split, on the outputs of `head` when given; accuracy is None
    for a regression target. In the training precision and memory format of `execution` when
    given (the loop's per-epoch evaluation), else in plain fp32."""
    x, y = pair
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for xb, yb in eval_batches(pair, EVAL_BATCH):
        if execution is None:
            out = outputs(model, xb, head)
        else:
            with execution.autocast():
                out = outputs(model, execution.inputs(xb), head)
        total_loss += compute_loss(loss_name, out.float(), yb) * len(xb)
        if not yb.is_floating_point():
            correct += (out.argmax(dim=-1) == yb).sum()
    model.train(was_training)
    acc = None if y.is_floating_point() else correct.item() / len(x)
    return total_loss.item() / len(x), acc


def to_device(splits: Splits, device: torch.device) -> Splits:
    """Move every split to the device once, before the first epoch."""

    def move(pair: Pair | None) -> Pair | None:
        return None if pair is None else (pair[0].to(device), pair[1].to(device))

    return Splits(move(splits.train), move(splits.test), move(splits.val))


def batches(n: int, batch: int, shuffle: torch.Generator, device: torch.device) -> list[torch.Tensor]:
    """Index tensors of one epoch's batches, drawn from `shuffle`. A last batch of one sample is
    dropped: batch norm cannot normalise a single sample in training mode."""
    perm = torch.randperm(n, generator=shuffle).to(device)
    chunks = list(perm.split(batch))
    return chunks[:-1] if len(chunks) > 1 and len(chunks[-1]) == 1 else chunks


def steps_per_epoch(n: int, batch: int) -> int:
    """How many batches `batches` yields for `n` samples."""
    full, rest = divmod(n, batch)
    return full + (1 if rest > 1 or (rest == 1 and full == 0) else 0)


def train_epoch(
    state: TrainState,
    train: Pair,
    config: TrainConfig,
    progress: TrainingProgress,
    execution: Execution | None = None,
    warmup: int = 0,
) -> float:
    """One pass over the training split (augmented where the data say so, drawing from the
    shuffle generator after the epoch's order); returns the mean training loss. `execution`
    (default: the one `config` and the data's device say) runs each batch; `warmup` batches after
    a growth step run at a learning rate ramped up linearly (growdsl/run/warmup.py)."""
    x, _ = train
    execution = execution or Execution(config, x.device)
    state.model.train()
    model = distributed.training_model(state.model)  # wrapped anew after growth replaced it
    total = torch.zeros((), device=x.device)
    seen = torch.zeros((), device=x.device)
    chunks = batches(len(x), config.batch, state.shuffle, x.device)
    factors = warmup_factors(state.history, state.epoch, len(chunks), warmup)
    for step, (xb, yb) in enumerate(training_batches(train, chunks, state.shuffle), start=1):
        weight = 1.0
        if collective.active():  # this rank's part of the global batch (augmented alike on every rank)
            rows, weight = distributed.rank_batch(torch.arange(len(yb), device=yb.device))
            xb, yb = xb.index_select(0, rows), yb.index_select(0, rows)
        with execution.autocast():
            forward = functools.partial(execution.forward, model)
            out = outputs(forward, xb, state.head)
            loss = compute_loss(config.loss, out.float(), yb) if len(yb) else out.sum() * 0.0
        state.optimizer.zero_grad(set_to_none=True)
        with scaled_lr(state.optimizer, factors[step - 1]):
            backward_and_step(loss * weight if weight != 1.0 else loss, state.optimizer, state.scaler)
        total += loss.detach() * len(yb)
        seen += len(yb)
        live = progress.enabled and step % PROGRESS_EVERY == 0
        progress.step((total / seen).item() if live else None)
    if state.scheduler is not None:
        state.scheduler.step()
    distributed.same_buffers(state.model)
    return float(collective.all_sum(total)) / float(collective.all_sum(seen))


def fit(
    state: TrainState,
    data: Splits,
    config: TrainConfig,
    *,
    stop_at: int,
    log: Callable[[list[dict[str, Any]]], None],
    save: Callable[[TrainState], None],
    after_epoch: Sequence[AfterEpoch] = (),
    show_progress: bool = False,
    run_epochs: int | None = None,
    warmup: int = 0,
) -> None:
    """Train from `state.epoch` up to epoch `stop_at`. After each epoch: evaluate on the held-out
    split (val if there is one, else test; its loss is the one held-out metric of a regression
    run), append the epoch's record to the history, run
    `after_epoch` (which may append records of its own, e.g. growth steps), `log` the new records,
    then `save` the state. `run_epochs` is the run's epoch count the progress bar shows (a task
    sequence is fit one task at a time, but counts its epochs over all tasks); default
    `config.epochs`; `warmup`: the batches of learning-rate warm-up after a growth step (the grow
    block's `after_growth(warmup: N)`). An epoch whose mean training loss is not finite raises
    DivergenceError before anything of it is logged or saved, so the last checkpoint is the last
    good state."""
    held_out = data.val if data.val is not None else data.test
    steps = steps_per_epoch(len(data.train[0]), config.batch)
    execution = Execution(config, data.train[0].device)
    execution.check()
    with TrainingProgress(show_progress, run_epochs or config.epochs, steps) as progress:
        while state.epoch < stop_at:
            start = time.perf_counter()
            progress.start_epoch(state.epoch + 1, steps, ir.param_count(state.graph))
            loss = train_epoch(state, data.train, config, progress, execution, warmup)
            if not math.isfinite(loss):  # the epoch's mean: one check an epoch, no extra sync a step
                raise DivergenceError(state.epoch + 1, loss)
            held_out_loss, acc = evaluate(state.model, held_out, config.loss, state.head, execution)
            state.epoch += 1
            record = {
                "event": "epoch",
                "epoch": state.epoch,
                "loss": round(loss, 6),
                "acc": None if acc is None else round(acc, 6),
                "held_out_loss": round(held_out_loss, 6),
                "params": ir.param_count(state.graph),
                "flops": ir.flops(state.graph),
                "time": round(time.perf_counter() - start, 3),
            }
            progress.end_epoch(loss, acc)
            logged = len(state.history)
            state.history.append(record)
            for hook in after_epoch:
                hook(state, record)
            log(state.history[logged:])
            save(state)
