"""run: a Spec to a run directory — data, training loop, checkpoints, history, report.

`run(spec)` trains the spec's architecture and writes its run directory; `resume(dir)` continues
an interrupted run from its checkpoint and, on the CPU, ends with bitwise the same weights as a run
that was never interrupted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from growdsl import ir, lang
from growdsl.compile import compile_graph
from growdsl.errors import GrowDSLError, RunError
from growdsl.export import FILE_NAMES, write_atomically, write_exports
from growdsl.grow.policy import GrowthPolicy
from growdsl.ir.graph import ArchGraph
from growdsl.lang.ast import Spec
from growdsl.run import datasets
from growdsl.run.checkpoint import load_checkpoint, restore_rng_states, save_checkpoint
from growdsl.run.config import TrainConfig, build_optimizer, build_schedule, resolve_device, train_config
from growdsl.run.continual import fit_tasks, task_metrics, total_epochs
from growdsl.run.datasets import DataInfo, Splits
from growdsl.run.divergence import LastGood, stop_cleanly
from growdsl.run.loop import TrainState, compute_loss, evaluate, fit, seed_everything, to_device
from growdsl.run.progress import progress_enabled
from growdsl.run.report import write_report
from growdsl.run.rundir import (
    MODEL,
    RUN_FILES,
    SPEC,
    append_history,
    claim,
    make_run_dir,
    releases_claims,
    write_history,
    write_identity,
    write_text,
)

__all__ = ["Run", "resume", "run"]


@dataclass
class Run:
    """A finished (or stopped) run: its folder, final graph and model, history and test metrics."""

    dir: Path
    graph: ArchGraph
    model: nn.Module
    history: list[dict[str, Any]]
    final_metrics: dict[str, Any]

    def summary(self) -> str:
        m = self.final_metrics
        acc = f", test acc {m['test_acc']:.4f}" if m.get("test_acc") is not None else ""
        if "avg_acc" in m:
            acc = f", average acc over {len(m['accs'])} tasks {m['avg_acc']:.4f}"
        return (
            f"{self.dir}: {m['epochs']} epochs, test loss {m['test_loss']:.4f}{acc}, "
            f"{m['params']:,} params, {m['flops']:,} FLOPs"
        )


def spec_text(spec: Spec) -> str:
    """The text of the spec as it runs: the file itself when it still parses to `spec` (comments
    kept), else the formatted spec (e.g. with `--set` overrides applied)."""
    try:
        text = Path(spec.file).read_text()
        if lang.parse_text(text, spec.file) == spec:
            return text
    except (OSError, UnicodeDecodeError, GrowDSLError):
        pass
    header = "# The spec as run (with --set overrides applied), formatted by growdsl.\n"
    return header + lang.format_spec(spec)


@releases_claims
def run(
    spec: Spec,
    out: str | Path | None = None,
    *,
    device: str | None = None,
    quiet: bool = False,
    force: bool = False,
    epochs_limit: int | None = None,
) -> Run:
    """Train the spec's architecture; write its run directory (see `growdsl.run.rundir`).

    `device` overrides `train.device`; `epochs_limit` stops after that many epochs, leaving a
    checkpoint to resume from, as an interruption would.
    """
    info = datasets.describe(spec.data)
    config = train_config(spec.train, regression=info.classes is None)
    dev = resolve_device(device or config.device)
    graph = ir.lower(spec, info.input_shape, info.classes)
    data = _load(spec, info, config.seed)  # before the folder: a DataError leaves none
    _refuse_to_overwrite(spec.file, out)
    run_dir = make_run_dir(out, graph.root, force=force)
    shuffle = seed_everything(config.seed)
    model = compile_graph(graph).to(dev)
    optimizer = build_optimizer(config.optimizer, model.parameters())
    scheduler = build_schedule(config.schedule, optimizer, total_epochs(config, info))
    state = TrainState(graph, model, optimizer, scheduler, shuffle)
    text = spec_text(spec)
    write_identity(run_dir, text)
    write_text(run_dir / SPEC, text)
    write_history(run_dir, [])
    _checkpointer(run_dir, text, dev)(state)  # resumable from epoch 0
    total = total_epochs(config, info)
    stop_at = total if epochs_limit is None else min(total, epochs_limit)
    with stop_cleanly(run_dir, functools.partial(_finish, spec)):
        return _train(spec, info, text, state, data, config, dev, run_dir, quiet, stop_at)


@releases_claims
def resume(run_dir: str | Path, *, device: str | None = None, quiet: bool = False) -> Run:
    """Continue the run in `run_dir` from its checkpoint to the spec's last epoch."""
    run_dir = Path(run_dir)
    claim(run_dir)  # one owner at a time (growdsl/run/rundir.py)
    ckpt = load_checkpoint(run_dir)
    text = ckpt["spec"]
    spec = lang.parse_text(text, str(run_dir / SPEC))
    info = datasets.describe(spec.data)
    config = train_config(spec.train, regression=info.classes is None)
    # the device the run used, unless the caller asks for another (a run started with --device)
    dev = resolve_device(device or ckpt.get("device") or config.device)
    data = _load(spec, info, config.seed)
    graph = ir.from_json(ckpt["graph"])
    model = compile_graph(graph)
    model.load_state_dict(ckpt["model"])
    model.to(dev)
    optimizer = build_optimizer(config.optimizer, model.parameters())
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler = build_schedule(config.schedule, optimizer, total_epochs(config, info))
    if scheduler is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    shuffle = torch.Generator()
    restore_rng_states(ckpt["rng"], shuffle)
    state = TrainState(graph, model, optimizer, scheduler, shuffle, ckpt["epoch"], list(ckpt["history"]))
    write_history(run_dir, state.history)  # drop lines of an epoch that ran past the checkpoint
    with stop_cleanly(run_dir, functools.partial(_finish, spec)):
        return _train(spec, info, text, state, data, config, dev, run_dir, quiet, total_epochs(config, info))


def _refuse_to_overwrite(spec_file: str, out: str | Path | None) -> None:
    """A run never writes over its own input (`--out` the spec's folder, with --force)."""
    if out is None:
        return
    written = {(Path(out) / name).resolve() for name in (*RUN_FILES, *FILE_NAMES.values())}
    if Path(spec_file).resolve() in written:
        raise RunError(f"the run would overwrite its own spec {spec_file}: choose another --out folder")


def _checkpointer(run_dir: Path, text: str, device: torch.device) -> Callable[[TrainState], None]:
    """Saves the state with what `resume` needs besides it: the spec as run and the device used."""
    return lambda state: save_checkpoint(
        run_dir, {**state.checkpoint_payload(), "spec": text, "device": str(device)}
    )


def _load(spec: Spec, info: DataInfo, seed: int) -> Splits | list[Splits]:
    """The data set's splits, or each task's with `tasks:`."""
    return datasets.load_tasks(spec.data, seed) if info.tasks else datasets.load_data(spec.data, seed)


def _growth_hooks(spec: Spec, data: Splits, config: TrainConfig) -> tuple:
    """The growth policy's after-epoch hook, when the spec has a `grow` block."""
    if spec.grow is None:
        return ()
    policy = GrowthPolicy.from_block(spec.grow)
    hook = policy.hook(
        data.train,
        functools.partial(compute_loss, config.loss),
        functools.partial(build_optimizer, config.optimizer),
        lambda optimizer: build_schedule(config.schedule, optimizer, config.epochs),
        config.seed,
        config.epochs,
    )
    return (hook,)


def _train(
    spec: Spec,
    info: DataInfo,
    text: str,
    state: TrainState,
    data: Splits | list[Splits],
    config: TrainConfig,
    device: torch.device,
    run_dir: Path,
    quiet: bool,
    stop_at: int,
) -> Run:
    if info.tasks:
        tasks = [to_device(d, device) for d in data]
        log = functools.partial(append_history, run_dir)
        save = _checkpointer(run_dir, text, device)
        fit_tasks(spec, info, state, tasks, config, stop_at=stop_at, log=log, save=save,
                  show_progress=progress_enabled(quiet))  # fmt: skip
        metrics = task_metrics(state, info, tasks, config.loss)
        if state.epoch == total_epochs(config, info):
            done = {"event": "tasks_done", "avg_acc": metrics["avg_acc"], "accs": metrics["accs"]}
            state.history.append(done)
            log([done])
        return _finish(spec, state, run_dir, {"epochs": state.epoch, **metrics})
    data = to_device(data, device)
    fit(
        state,
        data,
        config,
        stop_at=stop_at,
        log=lambda records: append_history(run_dir, records),
        save=_checkpointer(run_dir, text, device),
        after_epoch=_growth_hooks(spec, data, config),
        show_progress=progress_enabled(quiet),
    )
    test_loss, test_acc = evaluate(state.model, data.test, config.loss)
    return _finish(
        spec, state, run_dir, {"epochs": state.epoch, "test_loss": test_loss, "test_acc": test_acc}
    )


def _finish(spec: Spec, state: TrainState | LastGood, run_dir: Path, metrics: dict[str, Any]) -> Run:
    """Final metrics (with size), weights, report and exports of a run that trained."""
    final_metrics = {**metrics, "params": ir.param_count(state.graph), "flops": ir.flops(state.graph)}
    weights = {k: v.detach().cpu() for k, v in state.model.state_dict().items()}
    write_atomically(run_dir / MODEL, lambda p: torch.save(weights, p))
    write_report(run_dir, f"growdsl run {run_dir.name}", state.history, final_metrics)
    formats = tuple(f.id for f in spec.export.formats) if spec.export else ()
    write_exports(run_dir, spec, state.graph, state.model, formats)
    return Run(run_dir, state.graph, state.model, state.history, final_metrics)
