"""Where a population's members train: in this process, in worker processes here, or on Ray.

The driver decides (rank, choose parents, mix) and hands each backend `MemberJob`s: a member's
checkpoint payload and how many epochs to train it. Every backend runs the same function,
`run_job`, which calls `growdsl.run.member.train_member`, and yields `MemberResult`s as they
finish. A member that raises (a crash, a divergence) comes back with its error instead of a
payload; a local worker process that dies fails only the job it ran, after one more try in a
fresh worker (`LocalPool`). Each member trains with
`threads` torch threads (the cores shared among the workers), in every backend, so a search
gives the same members whichever backend ran them (tested on the CPU). On GPUs, a placement
(growdsl/search/placement.py) gives each worker, or each Ray task, its device; a member's payload
always comes back on the CPU.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as connection_wait
from typing import Any

import torch

from growdsl.errors import RunError
from growdsl.lang.ast import GrowBlock
from growdsl.plugins import load_plugins
from growdsl.run.config import TrainConfig
from growdsl.run.cpus import usable_cpus
from growdsl.run.datasets import Splits
from growdsl.run.member import Payload, train_member
from growdsl.search.placement import Backend, DeviceQueue, Slot, per_gpu


@dataclass(frozen=True)
class MemberJob:
    """A member to train for `epochs`, with `config` (None: the context's); `grows: False` trains it
    without the context's grow block and `seed` replaces the config's seed (growth's samples are
    drawn from it), so jobs of several arms and seeds share one pool (`growdsl payoff`)."""

    member: int
    payload: Payload
    epochs: int
    grows: bool = True
    seed: int | None = None
    config: TrainConfig | None = None


@dataclass
class MemberResult:
    """A trained member's new payload and metrics, or the error it ended with (payload None)."""

    member: int
    payload: Payload | None
    metrics: dict[str, Any] | None
    error: str | None = None
    seconds: float = 0.0  # the job's own wall time
    device: str | None = None  # the device a placement gave it (None: the config's)


@dataclass(frozen=True)
class TrainingContext:
    """What every job of a search shares: the data, the training settings, the grow block, and
    the torch threads a member trains with."""

    data: Splits
    config: TrainConfig
    grow: GrowBlock | None
    threads: int
    plugins: tuple[str, ...] = ()  # loaded by each job first: a worker process starts without them


def run_job(context: TrainingContext, job: MemberJob, slot: Slot | None = None) -> MemberResult:
    """Train one member (in whatever process this runs), on `slot`'s device when a placement gave
    it one; its error, if it raises, is the result. The payload comes back on the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(context.threads)
    start = time.perf_counter()
    device = slot.device if slot is not None else None
    try:
        load_plugins(context.plugins)
        config = job.config or context.config
        config = config if job.seed is None else dataclasses.replace(config, seed=job.seed)
        grow = context.grow if job.grows else None
        if slot is not None and slot.share < 1 and torch.cuda.is_available():
            _limit_memory(slot)
        payload, metrics = train_member(
            job.payload, context.data, config, job.epochs, grow=grow, device=device
        )
    except Exception as e:  # noqa: BLE001 - a member's failure is data for the search, not a crash of it
        error = f"{type(e).__name__}: {e}"
        return MemberResult(job.member, None, None, error, time.perf_counter() - start, device)
    finally:
        torch.set_num_threads(threads)
    return MemberResult(job.member, on_cpu(payload), metrics, None, time.perf_counter() - start, device)


def _limit_memory(slot: Slot) -> None:
    """A member may take `slot.share` of its GPU's memory (this process's whole use of it), so a
    member that outgrows its share fails alone instead of its neighbours on the GPU."""
    device = torch.device(slot.device)
    torch.cuda.set_per_process_memory_fraction(slot.share, device.index or 0)


def on_cpu(value: Any) -> Any:
    """`value` with every tensor in it (in dicts, lists and tuples) moved to the CPU: a member's
    payload leaves its worker as plain CPU tensors, whatever device it trained on."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: on_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(on_cpu(v) for v in value)
    return value


def threads_per_member(workers: int) -> int:
    return max(1, usable_cpus() // workers)


class InProcess:
    """Members one after another in this process (on `slot`'s device when placed)."""

    def __init__(self, context: TrainingContext, slot: Slot | None = None) -> None:
        self.context, self.slot = context, slot

    def run(self, jobs: Iterable[MemberJob]) -> Iterator[MemberResult]:
        for job in jobs:
            yield run_job(self.context, job, self.slot)

    def close(self) -> None:
        pass


RETRIES = 1  # a job whose worker process died runs once more in a fresh worker before it fails


def _worker_main(context: TrainingContext, conn: Connection, slot: Slot | None) -> None:
    """A worker process: jobs in, results out, one at a time (on `slot`), until the pipe closes."""
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the search closed the pool
            return
        conn.send(run_job(context, job, slot))


def _receive(conn: Connection) -> MemberResult | None:
    """A worker's result if one is waiting, None where its pipe is closed or empty."""
    try:
        return conn.recv() if conn.poll() else None
    except (EOFError, OSError):
        return None


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    slot: Slot | None  # where its members train (a GPU slot it holds for its life), or None
    job: MemberJob | None = None  # the job it runs now


class LocalPool:
    """Members in `workers` worker processes on this machine (started fresh, `spawn`), the data
    sent to each worker once; payloads travel as pickled tensors over one pipe per worker.

    Each worker runs one job at a time and the pool knows which, so a worker that dies (killed,
    out of memory) fails only its own job: a fresh worker takes its place, the job runs once more
    there (a kill from outside is not the member's fault, and the same payload trains to the same
    result), and only a second death makes it a crash. The other workers never notice.

    With a `DeviceQueue` (growdsl/search/placement.py), each worker takes one slot from it when it
    starts and holds it for its life: no more workers start than the queue has slots, and a dead
    worker's slot goes back to the queue for the fresh worker in its place."""

    def __init__(
        self, context: TrainingContext, workers: int, queue: DeviceQueue | None = None, share: float = 1.0
    ) -> None:
        self.context, self.queue, self.share = context, queue, share
        self.workers = min(workers, queue.slots) if queue is not None else workers
        self.spawn = multiprocessing.get_context("spawn")
        self.pool = [self._start() for _ in range(self.workers)]

    def _start(self) -> _Worker:
        slot = Slot(self.queue.take(), self.share) if self.queue is not None else None
        ours, theirs = self.spawn.Pipe()
        process = self.spawn.Process(target=_worker_main, args=(self.context, theirs, slot), daemon=True)
        process.start()
        theirs.close()
        return _Worker(process, ours, slot)

    def _release(self, worker: _Worker) -> None:
        if self.queue is not None and worker.slot is not None:
            self.queue.give_back(worker.slot.device)

    def run(self, jobs: Iterable[MemberJob]) -> Iterator[MemberResult]:
        todo = iter(jobs)
        retry: list[MemberJob] = []
        deaths: dict[int, int] = {}
        for worker in self.pool:
            self._hand(worker, retry, todo)
        while any(w.job is not None for w in self.pool):
            busy = [w for w in self.pool if w.job is not None]
            ready = connection_wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                if worker.conn not in ready and worker.process.sentinel not in ready:
                    continue
                result = _receive(worker.conn)
                if result is None:  # the pipe closed or the process ended: it died with its job
                    worker, result = self._replace_dead(worker, deaths, retry)
                else:
                    worker.job = None
                self._hand(worker, retry, todo)  # busy again while the caller takes the result
                if result is not None:
                    yield result

    def _hand(self, worker: _Worker, retry: list[MemberJob], todo: Iterator[MemberJob]) -> None:
        """Give an idle worker the next job: a retried one first, then the next drawn."""
        job = retry.pop(0) if retry else next(todo, None)
        if job is not None:
            worker.job = job
            try:
                worker.conn.send(job)
            except OSError:  # it died idle: its sentinel fires, and the job goes to its successor
                pass

    def _replace_dead(
        self, worker: _Worker, deaths: dict[int, int], retry: list[MemberJob]
    ) -> tuple[_Worker, MemberResult | None]:
        """The worker died with its job: a fresh, idle worker in its place; the job queued to run
        again, or (its second death) failed."""
        worker.process.join()
        code = worker.process.exitcode
        job = worker.job
        assert job is not None
        worker.conn.close()
        self._release(worker)
        fresh = self._start()
        self.pool[self.pool.index(worker)] = fresh
        deaths[job.member] = deaths.get(job.member, 0) + 1
        if deaths[job.member] <= RETRIES:
            retry.append(job)
            return fresh, None
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return fresh, MemberResult(job.member, None, None, f"worker process died twice running it ({how})")

    def close(self) -> None:
        for worker in self.pool:
            worker.conn.close()  # the worker's recv ends: it returns
        for worker in self.pool:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
            self._release(worker)
        self.pool = []


@dataclass(frozen=True)
class Cluster:
    """A Ray connection made for a search (`connect`), before its folder exists; `started`: the
    search started a local Ray instance and shuts it down at the end."""

    started: bool


REACH_SECONDS = 3.0  # how long a cluster's address has to answer at all (`unanswered`)


def unanswered(address: str) -> str | None:
    """Why nothing answers at the host and port of a Ray address (`host:port`, `ray://host:port`),
    or None when something does or the address names no port (`auto` is Ray's to resolve). One TCP
    connection, given REACH_SECONDS: Ray's own attempts at a cluster that is not there go on
    retrying for minutes before they fail."""
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not port.isdigit():
        return None
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_SECONDS):
            return None
    except OSError as e:  # refused, timed out, an unknown host
        return e.strerror or str(e) or type(e).__name__


def connect(backend: Backend, workers: int, quiet: bool, in_process: bool = False) -> Cluster | None:
    """Join the Ray cluster of `ray(address: ...)`, or start a local Ray instance with `workers`
    CPUs, before anything is written: a cluster that cannot be reached is a RunError, and no
    half-made folder is left (an address where nothing answers is told within REACH_SECONDS).
    With `quiet`, Ray's own INFO and WARNING lines are not shown."""
    if backend.name != "ray" or in_process:
        return None
    if backend.address is not None and (why := unanswered(backend.address)) is not None:
        raise RunError(
            f"cannot reach a Ray cluster at {backend.address!r}: nothing answers there ({why}); "
            "start the cluster (ray start --head) or correct the address"
        )
    import ray

    if ray.is_initialized():
        return Cluster(started=False)
    level = logging.ERROR if quiet else logging.WARNING
    try:
        if backend.address is None:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=level)
        else:
            ray.init(address=backend.address, log_to_driver=False, logging_level=level)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"at {backend.address!r}" if backend.address else "on this machine"
        raise RunError(f"cannot reach a Ray cluster {where}: {e}".rstrip(": ")) from None
    try:
        check_ray_gpus(backend, ray.cluster_resources())
    except RunError:
        ray.shutdown()  # started here: nothing else uses it
        raise
    return Cluster(started=True)


def check_ray_gpus(backend: Backend, resources: dict[str, float]) -> None:
    """A RunError when each member asks for a GPU share the cluster's `resources` (Ray's
    `cluster_resources()`) cannot give: Ray would keep its tasks waiting for ever."""
    gpus = resources.get("GPU", 0)
    if backend.gpu_share is not None and gpus < backend.gpu_share:
        where = f"at {backend.address!r}" if backend.address else "started on this machine"
        raise RunError(
            f"backend ray(gpus_per_member: {backend.gpu_share:g}) asks that share of a GPU for each "
            f"member, and the Ray cluster {where} has {gpus:g} GPUs: its members would wait for ever"
        )


def check_placement(backend: Backend, device: str, in_process: bool = False) -> None:
    """Before anything is written: the members' `device` (train.device or --device) leaves the
    GPU to a backend that places members on GPUs, and a local placement's GPUs are on this
    machine (a RunError otherwise). `in_process` (every member here, on `device`): nothing to check."""
    if backend.gpu_share is None or in_process:
        return
    if device == "cpu" or device.startswith("cuda:"):
        raise RunError(
            f"the backend places each member on a GPU, and the members' device is {device} "
            "(train.device or --device): use cuda or auto"
        )
    if backend.name != "local":
        return
    named = f"backend local(gpus: [{', '.join(str(g) for g in backend.gpus)}])"
    if not torch.cuda.is_available():
        raise RunError(f"{named} places members on GPUs, and CUDA is not available on this machine")
    count = torch.cuda.device_count()
    missing = [g for g in backend.gpus if g >= count]
    if missing:
        raise RunError(f"{named} names GPU {missing[0]}, and this machine has {count} CUDA device(s)")


def device_queue(backend: Backend) -> DeviceQueue | None:
    """The slots of a local placement on GPUs (None without one)."""
    if backend.name != "local" or backend.gpu_share is None:
        return None
    return DeviceQueue([f"cuda:{g}" for g in backend.gpus], per_gpu(backend.gpu_share))


class RayPool:
    """Members as Ray tasks, one CPU each (and `gpu_share` of a GPU: Ray's `num_gpus`, the GPU it
    assigns being the task's `cuda`), on the cluster `connect` joined or started (stopped after
    the search when it started it). The context is put in Ray's object store once. At most
    `workers` tasks are in flight: a job is drawn when one ends, as a local pool draws it when a
    worker is free (a random search draws its trials lazily)."""

    def __init__(
        self, context: TrainingContext, cluster: Cluster, workers: int, gpu_share: float | None = None
    ) -> None:
        import ray

        self.ray, self.cluster, self.workers = ray, cluster, workers
        self.context = ray.put(context)
        self.task = ray.remote(**ray_resources(gpu_share))(run_job)
        self.slot = Slot("cuda", gpu_share) if gpu_share is not None else None

    def run(self, jobs: Iterable[MemberJob]) -> Iterator[MemberResult]:
        todo = iter(jobs)
        pending: dict[Any, MemberJob] = {}  # a task's object ref -> its job

        def submit() -> None:
            job = next(todo, None)
            if job is not None:
                pending[self.task.remote(self.context, job, self.slot)] = job

        for _ in range(self.workers):
            submit()
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                submit()  # busy again while the caller takes the result
                try:
                    yield self.ray.get(ref)
                except self.ray.exceptions.RayError as e:  # the worker died (after Ray's own retries)
                    yield MemberResult(job.member, None, None, f"Ray task failed: {e}")

    def close(self) -> None:
        if self.cluster.started:
            self.ray.shutdown()


def ray_resources(gpu_share: float | None) -> dict[str, float]:
    """What each member's Ray task asks for: 1 CPU, and `gpu_share` of a GPU when given."""
    return {"num_cpus": 1} if gpu_share is None else {"num_cpus": 1, "num_gpus": gpu_share}


def make_backend(
    backend: Backend, context: TrainingContext, workers: int, cluster: Cluster | None = None
) -> InProcess | LocalPool | RayPool:
    """The backend the search block asks for (`ray`: on the cluster `connect` made); `local` with
    one worker trains in this process (on the first GPU of a placement)."""
    if backend.name == "ray":
        return RayPool(context, cluster or connect(backend, workers, quiet=False), workers, backend.gpu_share)
    queue, share = device_queue(backend), backend.gpu_share or 1.0
    if workers > 1:
        return LocalPool(context, workers, queue, share)
    return InProcess(context, Slot(queue.take(), share) if queue is not None else None)
