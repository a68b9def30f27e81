"""One run on several processes: the process group, each rank's share of a batch, the DDP wrap.

`growdsl run SPEC --nproc N` hands the command to torch's own elastic launcher
(`torch.distributed.run`, what `torchrun` is), which starts N copies of `growdsl run SPEC`; so does
`torchrun --nproc_per_node N -m growdsl run SPEC`. Each copy finds the launcher's environment
(`WORLD_SIZE`, `RANK`, `LOCAL_RANK`, `MASTER_ADDR`, ...) and joins the process group: nccl on
GPUs (one GPU per local rank), gloo on the CPU. docs/distributed.md says what is synchronised when.

Semantics, exactly:

- every rank loads the whole data set and builds the same net from the same seed; the spec's
  `batch` is the global batch: the shuffle generator (the same on every rank) draws each batch
  as one process would, and rank r trains on the r-th contiguous part of it (`rank_batch`);
- the net trains wrapped in `DistributedDataParallel` (`training_model`), which averages the
  ranks' gradients; each rank's loss is weighted so that the average is the global batch's mean
  gradient even when the parts differ in size;
- a growth step replaces the module; the next epoch wraps the new one (DDP registers its gradient
  hooks at wrap time, so a wrapped module is never grown in place);
- only rank 0 writes the run folder (`writes()`); a checkpoint holds the unwrapped net and
  rank 0's generators, the same as one process's, so it resumes on any number of processes;
- a collective that waits longer than `timeout()` seconds raises, so a rank that hangs ends the
  run with an error instead of a hang; a rank that dies is noticed by the launcher, which stops
  the others.
"""

from __future__ import annotations

import datetime
import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from growdsl.errors import GrowDSLError, RunError
from growdsl.grow import collective
from growdsl.lazy import nn, torch
from growdsl.run.cpus import usable_cpus

TIMEOUT_ENV = "GROWDSL_RANK_TIMEOUT"
T = TypeVar("T")
DEFAULT_TIMEOUT = 300
"""Seconds a collective waits for the other ranks before the run stops with an error: longer than
any growth step of the nets growdsl trains on one GPU, short enough that a hung rank is noticed."""


def launched() -> bool:
    """Whether this process was started by torch's launcher as one of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def timeout() -> int:
    value = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT))
    try:
        seconds = int(value)
    except ValueError:
        raise RunError(f"{TIMEOUT_ENV}={value!r} is not a whole number of seconds") from None
    if seconds < 1:
        raise RunError(f"{TIMEOUT_ENV}={value!r}: give at least 1 second")
    return seconds


def start(device: torch.device) -> torch.device:
    """Join the launcher's process group (nccl for a GPU run, gloo on the CPU); the device this
    rank trains on (a GPU run uses the GPU of its local rank)."""
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist = torch.distributed
    if not dist.is_initialized():
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(seconds=timeout())
        )
    return device


def stop() -> None:
    """Leave the process group (at the end of a run, or when it fails)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def writes() -> bool:
    """Whether this process writes the run folder: rank 0, or the only process (known from the
    launcher's environment before the process group is joined)."""
    return collective.rank() == 0 if collective.active() else rank0_process()


def rank_batch(idx: torch.Tensor) -> tuple[torch.Tensor, float]:
    """This rank's part of a global batch (its indices, in order) and the factor its mean loss is
    multiplied by before backward so that DDP's average over ranks is the global batch's mean
    gradient: `n_r / n · R`."""
    rows, weight = collective.share(len(idx))
    return idx[rows], weight * collective.ranks()


_wrapped: list[Any] = []  # the DDP wrapper of the module being trained, at most one


def training_model(model: nn.Module) -> nn.Module:
    """`model` wrapped for data-parallel training (itself, alone): the wrapper made for this very
    module, or a new one when growth replaced it. Wrapping broadcasts rank 0's weights and
    registers the gradient hooks of the parameters the module has now."""
    if not collective.active():
        return model
    if _wrapped and _wrapped[0].module is model:
        return _wrapped[0]
    _wrapped.clear()
    from torch.nn.parallel import DistributedDataParallel

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    ids = [device.index] if device.type == "cuda" else None
    _wrapped.append(DistributedDataParallel(model, device_ids=ids))
    return _wrapped[0]


def same_buffers(model: nn.Module) -> None:
    """Rank 0's buffers (BN running statistics, updated by each rank on its own part of the
    batches) on every rank, so the ranks hold the same net for evaluation, growth and checksums."""
    if not collective.active():
        return
    with torch.no_grad():
        for buffer in model.buffers():
            collective.from_rank0(buffer)


def on_rank0(make: Callable[[], T]) -> T:
    """`make()` run on rank 0 only (creating the run folder, say), its result on every rank; a
    GrowDSLError it raises is raised on every rank (on the others as `Rank0Error`, with rank 0's
    message and exit code), so none waits for a value that never comes."""
    if not collective.active():
        return make()
    result: tuple[Any, ...] = ("none", None)
    error = None
    if collective.rank() == 0:
        try:
            result = ("value", make())
        except GrowDSLError as raised:
            error, result = raised, ("error", raised.render(), raised.exit_code)
    got = collective.decided(result)
    if error is not None:
        raise error
    if got[0] == "error":
        raise Rank0Error(got[1], got[2])
    return got[1]


class Rank0Error(RunError):
    """The error rank 0 raised in `on_rank0`, on another rank: rendered as rank 0 rendered it."""

    def __init__(self, rendered: str, exit_code: int) -> None:
        super().__init__(rendered)
        self.rendered, self.exit_code = rendered, exit_code

    def render(self) -> str:
        return self.rendered


def leaves_group(function: Callable[..., T]) -> Callable[..., T]:
    """Leave the process group when `function` (a run, a resume) returns or raises."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return function(*args, **kwargs)
        except RuntimeError as error:
            if not launched() or not _lost_peer(error):
                raise
            raise RunError(
                f"rank {os.environ.get('RANK', '?')}: another rank did not answer within {timeout()} s "
                f"({TIMEOUT_ENV}) or has ended: {str(error).splitlines()[0]}. The run folder holds the "
                "last checkpoint: `growdsl resume DIR` (with --nproc N, any N) continues it"
            ) from None
        finally:
            if launched():
                stop()

    return wrapper


_PEER_LOST = ("gloo", "NCCL", "ProcessGroup", "Connection closed by peer", "Connection reset by peer")


def _lost_peer(error: RuntimeError) -> bool:
    """Whether `error` is a collective that failed because another rank hung or died (torch
    raises these as RuntimeErrors of its backends, `DistError` or not)."""
    message = str(error)
    return isinstance(error, torch.distributed.DistError) or any(m in message for m in _PEER_LOST)


def rank0_process() -> bool:
    """Whether this process is rank 0 of the launcher's ranks (or not launched), from its
    environment: true before the process group is joined and after it is left."""
    return os.environ.get("RANK", "0") == "0"


def launch(nproc: int, argv: Sequence[str]) -> None:
    """Run `python -m growdsl ARGV` on `nproc` processes through torch's elastic launcher, which
    picks a free port, watches the workers and stops them all when one fails. A failure is a
    RunError naming the rank and how it ended."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    args = get_args_parser().parse_args([*launcher_args(nproc), "-m", "growdsl", *argv])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, usable_cpus() // nproc)))
    try:
        run(args)
    except ChildFailedError as failed:
        raise RunError(failure_message(failed, nproc)) from None


def launcher_args(nproc: int) -> list[str]:
    """The options of torch's launcher for `nproc` ranks on this machine: a free port
    (`--standalone`), no restarts (a run resumes from its folder instead), and a rank's end
    noticed within half a second."""
    restarts, monitor = ["--max-restarts", "0"], ["--monitor-interval", "0.5"]
    return ["--standalone", "--nproc-per-node", str(nproc), *restarts, *monitor]


def launcher_command(nproc: int, *target: str) -> list[str]:
    """The command line that runs `target` (a script and its arguments, or `-m module ...`) on
    `nproc` ranks through torch's launcher, as `launch` does: for a subprocess (a benchmark, a
    test), the same as `torchrun --nproc-per-node N TARGET`."""
    return [sys.executable, "-m", "torch.distributed.run", *launcher_args(nproc), *target]


def failure_message(failed: Any, nproc: int) -> str:
    """What a user reads when a rank of an `--nproc` run fails: the first failure, named."""
    rank, failure = failed.get_first_failure()
    if failure.exitcode == 2:  # a GrowDSLError, which the rank has printed
        return f"rank {rank} of {nproc} stopped with the error above; the launcher stopped the other ranks"
    how = failure.signal_name() if failure.exitcode < 0 else f"exit code {failure.exitcode}"
    return (
        f"rank {rank} of {nproc} ended ({how}); the launcher stopped the other ranks. The run "
        "folder holds the last checkpoint: `growdsl resume DIR` (with --nproc N, any N) continues it"
    )


def main_argv(args: Sequence[str] | None = None) -> list[str]:
    """The command line of this process without `--nproc N` (what each rank runs)."""
    argv = list(sys.argv[1:] if args is None else args)
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = i + 1 < len(argv)
            continue
        if arg.startswith("--nproc="):
            continue
        out.append(arg)
    return out
