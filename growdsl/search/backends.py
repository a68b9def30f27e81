"""Where a population's members train: in this process, in worker processes here, or on Ray.

The driver decides (rank, choose parents, mix) and hands each backend `MemberJob`s: a member's
checkpoint payload and how many epochs to train it. Every backend runs the same function,
`run_job`, which calls `growdsl.run.member.train_member`, and yields `MemberResult`s as they
finish. A member that raises (a crash, a divergence) comes back with its error instead of a
payload; a worker process that dies fails the jobs that had finished or were running when its
pool broke, and the others go on in a fresh pool. Each member trains with
`threads` torch threads (the cores shared among the workers), in every backend, so a search
gives the same members whichever backend ran them (tested on the CPU).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import torch

from growdsl.lang.ast import GrowBlock
from growdsl.run.config import TrainConfig
from growdsl.run.datasets import Splits
from growdsl.run.member import Payload, train_member
from growdsl.search.methods import Backend


@dataclass(frozen=True)
class MemberJob:
    """Train `member` from `payload` for `epochs` epochs, with `config` (None: the context's)."""

    member: int
    payload: Payload
    epochs: int
    config: TrainConfig | None = None


@dataclass
class MemberResult:
    """A trained member's new payload and metrics, or the error it ended with (payload None)."""

    member: int
    payload: Payload | None
    metrics: dict[str, Any] | None
    error: str | None = None
    seconds: float = 0.0  # the job's own wall time


@dataclass(frozen=True)
class TrainingContext:
    """What every job of a search shares: the data, the training settings, the grow block, and
    the torch threads a member trains with."""

    data: Splits
    config: TrainConfig
    grow: GrowBlock | None
    threads: int


def run_job(context: TrainingContext, job: MemberJob) -> MemberResult:
    """Train one member (in whatever process this runs); its error, if it raises, is the result."""
    threads = torch.get_num_threads()
    torch.set_num_threads(context.threads)
    start = time.perf_counter()
    try:
        payload, metrics = train_member(
            job.payload, context.data, job.config or context.config, job.epochs, grow=context.grow
        )
    except Exception as e:  # noqa: BLE001 - a member's failure is data for the search, not a crash of it
        return MemberResult(job.member, None, None, f"{type(e).__name__}: {e}", time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return MemberResult(job.member, payload, metrics, None, time.perf_counter() - start)


def threads_per_member(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


class InProcess:
    """Members one after another in this process."""

    def __init__(self, context: TrainingContext) -> None:
        self.context = context

    def run(self, jobs: Iterable[MemberJob]) -> Iterator[MemberResult]:
        for job in jobs:
            yield run_job(self.context, job)

    def close(self) -> None:
        pass


_WORKER_CONTEXT: TrainingContext | None = None


def _init_worker(context: TrainingContext) -> None:
    global _WORKER_CONTEXT
    _WORKER_CONTEXT = context


def _worker_job(job: MemberJob) -> MemberResult:
    assert _WORKER_CONTEXT is not None, "the pool's initializer sets the context"
    return run_job(_WORKER_CONTEXT, job)


class LocalPool:
    """Members in `workers` worker processes on this machine (started fresh, `spawn`), the data
    sent to each worker once; payloads travel as pickled tensors."""

    def __init__(self, context: TrainingContext, workers: int) -> None:
        self.context, self.workers = context, workers
        self.pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.context,),
        )

    def run(self, jobs: Iterable[MemberJob]) -> Iterator[MemberResult]:
        pending = {self.pool.submit(_worker_job, job): job for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                job = pending.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool as e:  # a worker died (killed, out of memory)
                    broken = True
                    yield MemberResult(job.member, None, None, f"worker process died: {e}")
            if broken:  # the jobs not yet done go on in a fresh pool
                self.pool.shutdown(cancel_futures=True)
                self.pool = self._start()
                pending = {self.pool.submit(_worker_job, job): job for job in pending.values()}

    def close(self) -> None:
        self.pool.shutdown()


class RayPool:
    """Members as Ray tasks, one CPU each: on the cluster at `address`, or on a local Ray instance
    started for the search (with `workers` CPUs) and stopped after it. The context is put in
    Ray's object store once."""

    def __init__(self, context: TrainingContext, workers: int, address: str | None) -> None:
        import ray

        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            if address is None:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        self.context = ray.put(context)
        self.task = ray.remote(num_cpus=1)(run_job)

    def run(self, jobs: Iterable[MemberJob]) -> Iterator[MemberResult]:
        pending = {self.task.remote(self.context, job): job for job in jobs}
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    yield self.ray.get(ref)
                except self.ray.exceptions.RayError as e:  # the worker died
                    yield MemberResult(job.member, None, None, f"Ray task failed: {e}")

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def make_backend(backend: Backend, context: TrainingContext, workers: int) -> InProcess | LocalPool | RayPool:
    """The backend the search block asks for; `local` with one worker trains in this process."""
    if backend.name == "ray":
        return RayPool(context, workers, backend.address)
    return LocalPool(context, workers) if workers > 1 else InProcess(context)
