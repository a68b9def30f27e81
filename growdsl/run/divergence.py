"""A run whose training diverged stops cleanly, its last good state written out.

The training loop (`loop.fit`) raises `DivergenceError` when an epoch's mean training loss is NaN
or infinite, before anything of that epoch is logged or saved: the checkpoint on disk is then the
state after the last good epoch. `stop_cleanly` turns that into a finished-looking run directory:
`model.pt`, `final.grow`, `graph.json` and the report of the checkpoint's state, and one last
history line,

    {"event": "diverged", "epoch": 7, "loss": null, "nonfinite": ["loss"], "kept_epoch": 6}

then lets the error (exit code 3, docs/cli.md) reach the CLI with where the state was kept.
`resume` of such a directory starts again from the kept epoch (and diverges again unless the
cause was transient).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growdsl import ir
from growdsl.compile import compile_graph
from growdsl.errors import DivergenceError
from growdsl.ir.graph import ArchGraph
from growdsl.lazy import nn
from growdsl.run.checkpoint import load_checkpoint
from growdsl.run.rundir import append_history


@dataclass
class LastGood:
    """The state of the run directory's checkpoint: what `_finish` writes out (graph, model, history)."""

    graph: ArchGraph
    model: nn.Module
    history: list[dict[str, Any]]
    epoch: int


def last_good(run_dir: Path) -> LastGood:
    """The graph, weights and history of `run_dir`'s checkpoint, on the CPU."""
    ckpt = load_checkpoint(run_dir)
    graph = ir.from_json(ckpt["graph"])
    model = compile_graph(graph)
    model.load_state_dict(ckpt["model"])
    return LastGood(graph, model, list(ckpt["history"]), ckpt["epoch"])


def stopped_metrics(history: list[dict[str, Any]], error: DivergenceError, kept: int) -> dict[str, Any]:
    """The report's table for a stopped run: the kept epoch's held-out numbers (the test split is
    not evaluated again: the stop should not fail on the way out for want of data)."""
    last = next((r for r in reversed(history) if r.get("event") == "epoch"), {})
    return {
        "epochs": kept,
        "diverged_in_epoch": error.epoch,
        "held_out_loss": last.get("held_out_loss"),
        "held_out_acc": last.get("acc"),
    }


@contextlib.contextmanager
def stop_cleanly(run_dir: Path, finish: Callable[[LastGood, Path, dict[str, Any]], Any]) -> Iterator[None]:
    """Around a run's training: on DivergenceError, log it, `finish` the checkpoint's state (write
    weights, exports, report) and re-raise it naming the kept epoch and the folder."""
    try:
        yield
    except DivergenceError as error:
        good = last_good(run_dir)
        line = {"event": "diverged", "epoch": error.epoch, "loss": error.loss, "kept_epoch": good.epoch}
        good.history.append(line)
        append_history(run_dir, [line])
        finish(good, run_dir, stopped_metrics(good.history, error, good.epoch))
        raise DivergenceError(error.epoch, error.loss, good.epoch, str(run_dir)) from None
