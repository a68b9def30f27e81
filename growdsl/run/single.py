"""One run of a spec (a search's members go through `growdsl.search.driver`): data, training
loop, checkpoints, history, report.

`run(spec)` trains the spec's architecture and writes its run directory; `resume(dir)` continues
an interrupted run from its checkpoint and, on the CPU, ends with bitwise the same weights as a run
that was never interrupted.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growdsl import ir, lang
from growdsl.errors import GrowDSLError, RunError
from growdsl.export import FILE_NAMES, write_atomically, write_exports
from growdsl.ir.graph import ArchGraph
from growdsl.lang.ast import Spec
from growdsl.lazy import nn, torch
from growdsl.run import datasets, distributed
from growdsl.run.checkpoint import load_checkpoint, save_checkpoint
from growdsl.run.config import TrainConfig, resolve_device, train_config
from growdsl.run.continual import fit_tasks, task_metrics, total_epochs
from growdsl.run.datasets import DataInfo, Splits
from growdsl.run.divergence import LastGood, stop_cleanly
from growdsl.run.execution import Execution
from growdsl.run.hparams import default_train
from growdsl.run.loop import TrainState, evaluate, to_device
from growdsl.run.member import initial_payload, state_from_payload, train_member
from growdsl.run.progress import progress_enabled, reading_progress
from growdsl.run.report import write_report
from growdsl.run.rundir import (
    MODEL,
    RUN_FILES,
    SPEC,
    append_history,
    claim,
    load_run_plugins,
    make_run_dir,
    releases_claims,
    write_history,
    write_identity,
    write_text,
)
from growdsl.run.tensorboard import TensorBoardLog, hparams


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
            f"{m['params']:,} params, {m['flops']:,} FLOPs" + _growth_note(self.history)
        )


def _growth_note(history: list[dict[str, Any]]) -> str:
    """What the summary says of growth steps that added nothing: when the net never grew, the
    first reason (the `grow_skipped` lines of history.jsonl hold every one)."""
    skipped = [r for r in history if r.get("event") == "grow_skipped"]
    if not skipped or any(r.get("event") == "grow" for r in history):
        return ""
    steps = len({r["epoch"] for r in skipped})
    return f"; it never grew: {steps} growth step(s) added nothing ({skipped[0]['reason']})"


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


@distributed.leaves_group
@releases_claims
def run(
    spec: Spec,
    out: str | Path | None = None,
    *,
    device: str | None = None,
    quiet: bool = False,
    force: bool = False,
    epochs_limit: int | None = None,
    tensorboard: str | Path | None = None,
) -> Run:
    """Train the spec's architecture; write its run directory (see `growdsl.run.rundir`).

    `device` overrides `train.device`; `epochs_limit` stops after that many epochs, leaving a
    checkpoint to resume from, as an interruption would. `tensorboard` is a folder to write
    TensorBoard logs to as the run goes (`growdsl.run.tensorboard`).
    """
    info = datasets.describe(spec.data)
    config = train_config(default_train(spec.train), regression=info.classes is None)
    dev = _start(resolve_device(device or config.device), info)
    Execution(config, dev).check()  # a precision or compile the device cannot do: before the folder
    graph = ir.lower(spec, info.input_shape, info.classes)
    data = load_splits(spec, info, config.seed, quiet)  # before the folder: a DataError leaves none
    refuse_to_overwrite(spec.file, out)
    writes = distributed.writes()  # only rank 0 of a distributed run writes the folder
    board = TensorBoardLog(tensorboard, hparams(spec)) if tensorboard is not None and writes else None
    from growdsl.search.driver import MEMBERS, SEARCH_FILES  # the search imports this module
    from growdsl.search.population import LINEAGE, POPULATION_PNG  # what its methods add (evolution too)

    text = spec_text(spec)
    # the net is built before the folder is made: one too large to allocate leaves no folder;
    # rank 0 records its device (`cuda:0` on GPUs); a resume under the launcher drops the index
    payload = initial_payload(graph, config, config.seed, total_epochs(config, info), _extra(text, dev))
    leftovers = (*SEARCH_FILES, MEMBERS, LINEAGE, POPULATION_PNG)
    run_dir = distributed.on_rank0(lambda: make_run_dir(out, graph.root, force=force, leftovers=leftovers))
    if writes:
        write_identity(run_dir, text)
        write_text(run_dir / SPEC, text)
        write_history(run_dir, [])
        save_checkpoint(run_dir, payload)  # resumable from epoch 0
    total = total_epochs(config, info)
    stop_at = total if epochs_limit is None else min(total, epochs_limit)
    with _stop_cleanly(run_dir, spec):
        result = _train(spec, info, payload, data, config, dev, run_dir, quiet, stop_at, board)
    if board is not None:
        board.finish(result.final_metrics)
    return result


@distributed.leaves_group
@releases_claims
def resume(run_dir: str | Path, *, device: str | None = None, quiet: bool = False) -> Run:
    """Continue the run in `run_dir` from its checkpoint to the spec's last epoch."""
    run_dir = Path(run_dir)
    if distributed.writes():
        claim(run_dir)  # one owner at a time (growdsl/run/rundir.py)
    load_run_plugins(run_dir)
    ckpt = load_checkpoint(run_dir)
    text = ckpt["spec"]
    spec = lang.parse_text(text, str(run_dir / SPEC))
    info = datasets.describe(spec.data)
    config = train_config(default_train(spec.train), regression=info.classes is None)
    # the device the run used, unless the caller asks for another (a run started with --device)
    dev = _start(resolve_device(device or _device_kind(ckpt.get("device")) or config.device), info)
    data = load_splits(spec, info, config.seed, quiet)
    if distributed.writes():
        write_history(run_dir, ckpt["history"])  # drop lines of an epoch that ran past the checkpoint
    with _stop_cleanly(run_dir, spec):
        return _train(spec, info, ckpt, data, config, dev, run_dir, quiet, total_epochs(config, info))


def _start(device: torch.device, info: DataInfo) -> torch.device:
    """The device this process trains on; under torch's launcher, after joining the process
    group (growdsl/run/distributed.py). A task sequence runs in one process only."""
    if not distributed.launched():
        return device
    if info.tasks:
        raise RunError("a task sequence (data ... tasks:) runs on one process: leave out --nproc")
    return distributed.start(device)


def _device_kind(device: str | None) -> str | None:
    """A checkpoint's device without the GPU index of the rank that saved it (`cuda:1` → `cuda`),
    under torch's launcher, where each rank takes its own GPU."""
    if device is None or not distributed.launched():
        return device
    return device.split(":")[0]


def _stop_cleanly(run_dir: Path, spec: Spec) -> contextlib.AbstractContextManager:
    """`stop_cleanly` on the process that writes the folder; the other ranks only re-raise."""
    if not distributed.writes():
        return contextlib.nullcontext()
    return stop_cleanly(run_dir, functools.partial(finish_run, spec))


def refuse_to_overwrite(spec_file: str, out: str | Path | None) -> None:
    """A run never writes over its own input (`--out` the spec's folder, with --force)."""
    if out is None:
        return
    written = {(Path(out) / name).resolve() for name in (*RUN_FILES, *FILE_NAMES.values())}
    if Path(spec_file).resolve() in written:
        raise RunError(f"the run would overwrite its own spec {spec_file}: choose another --out folder")


def _extra(text: str, device: torch.device) -> dict[str, Any]:
    """What a checkpoint holds besides the training state: the spec as run and the device used."""
    return {"spec": text, "device": str(device)}


def _checkpointer(run_dir: Path, text: str, device: torch.device) -> Callable[[TrainState], None]:
    return lambda state: save_checkpoint(run_dir, {**state.checkpoint_payload(), **_extra(text, device)})


def load_splits(spec: Spec, info: DataInfo, seed: int, quiet: bool = True) -> Splits | list[Splits]:
    """The data set's splits, or each task's with `tasks:`; unless `quiet`, a person watching sees
    a slow read's progress (an image folder's scan and its images decoded: `progress.counting`)."""
    with reading_progress(progress_enabled(quiet or not distributed.writes())):
        return datasets.load_tasks(spec.data, seed) if info.tasks else datasets.load_data(spec.data, seed)


def _train(
    spec: Spec,
    info: DataInfo,
    payload: dict[str, Any],
    data: Splits | list[Splits],
    config: TrainConfig,
    device: torch.device,
    run_dir: Path,
    quiet: bool,
    stop_at: int,
    board: TensorBoardLog | None = None,
) -> Run:
    """Train the payload's net up to epoch `stop_at`, logging (to `board` too, when given) and
    checkpointing every epoch."""

    def log(records: list[dict[str, Any]]) -> None:
        if not distributed.writes():
            return
        append_history(run_dir, records)
        if board is not None:
            board(records)

    save = _checkpointer(run_dir, payload["spec"], device) if distributed.writes() else lambda _state: None
    quiet = quiet or not distributed.writes()
    if info.tasks:
        state = state_from_payload(payload, config, device, total_epochs(config, info))
        tasks = [to_device(d, device) for d in data]
        fit_tasks(spec, info, state, tasks, config, stop_at=stop_at, log=log, save=save,
                  show_progress=progress_enabled(quiet))  # fmt: skip
        metrics = task_metrics(state, info, tasks, config.loss)
        if state.epoch == total_epochs(config, info):
            done = {"event": "tasks_done", "avg_acc": metrics["avg_acc"], "accs": metrics["accs"]}
            state.history.append(done)
            log([done])
        return finish_run(spec, state, run_dir, {"epochs": state.epoch, **metrics})
    payload, _ = train_member(
        payload,
        data,
        config,
        stop_at - payload["epoch"],
        grow=spec.grow,
        device=device,
        log=log,
        save=save,
        show_progress=progress_enabled(quiet),
    )
    state = state_from_payload(payload, config, device, config.epochs)
    test_loss, test_acc = evaluate(state.model, to_device(data, device).test, config.loss)
    return finish_run(
        spec, state, run_dir, {"epochs": state.epoch, "test_loss": test_loss, "test_acc": test_acc}
    )


def finish_run(
    spec: Spec,
    state: TrainState | LastGood,
    run_dir: Path,
    metrics: dict[str, Any],
    pictures: dict[str, Path] | None = None,
) -> Run:
    """Final metrics (with size), weights, report (with `pictures`, `{caption: png}`, besides its
    own) and exports of a run that trained (or, after a divergence, of its last good state)."""
    final_metrics = {**metrics, "params": ir.param_count(state.graph), "flops": ir.flops(state.graph)}
    if distributed.writes():  # rank 0 of a distributed run, or the only process
        weights = {k: v.detach().cpu() for k, v in state.model.state_dict().items()}
        write_atomically(run_dir / MODEL, lambda p: torch.save(weights, p))
        title = f"growdsl run {run_dir.name}"
        write_report(run_dir, title, state.history, final_metrics, state.graph, pictures)
        formats = tuple(f.id for f in spec.export.formats) if spec.export else ()
        write_exports(run_dir, spec, state.graph, state.model, formats)
    return Run(run_dir, state.graph, state.model, state.history, final_metrics)
