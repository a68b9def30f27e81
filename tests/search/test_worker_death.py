"""A local worker process killed with SIGKILL fails only the job it ran, and only on its second
death: the pool knows each worker's job, starts a fresh worker in its place and runs the job
once more there, so the others never notice and a search ends as if nothing happened (the same
payload trains to the same weights). Real worker processes, real kills."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import torch

from growdsl import api
from growdsl.lang import parse_text
from growdsl.run.config import train_config
from growdsl.run.datasets import load_data
from growdsl.run.member import initial_payload
from growdsl.search.backends import InProcess, LocalPool, MemberJob, TrainingContext

SPEC = """\
data spirals(n: 800, val: 0.2)
model m { linear(64) tanh linear(64) tanh linear(classes) }
train { epochs 4 batch 8 optimizer sgd(lr: 0.05) seed 0 device cpu }
"""


@pytest.fixture(scope="module")
def context_and_jobs():
    spec = parse_text(SPEC, "death.grow")
    config = train_config(spec.train)
    context = TrainingContext(load_data(spec.data, 0), config, None, 1)
    graph = api.lower(spec)
    jobs = [MemberJob(m, initial_payload(graph, config, m, config.epochs), config.epochs) for m in range(4)]
    return context, jobs


def _kill_worker_running(pool: LocalPool, member: int, spared: set[int]) -> int:
    """SIGKILL the worker that runs `member`'s job (one not in `spared`), once it runs it; its pid."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for worker in list(pool.pool):
            job, pid = worker.job, worker.process.pid
            if job is not None and job.member == member and pid not in spared and worker.process.is_alive():
                time.sleep(0.3)  # into its training
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.02)
    raise AssertionError(f"member {member} never ran")


def _run_with_kills(context, jobs, kills: list[int]):
    """Run `jobs` on two workers while a thread kills the worker of each member in `kills`."""
    pool = LocalPool(context, 2)
    killed: list[int] = []

    def killer() -> None:
        for member in kills:
            killed.append(_kill_worker_running(pool, member, set(killed)))

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        results = {r.member: r for r in pool.run(jobs)}
    finally:
        pool.close()
    thread.join(timeout=5)
    return results, killed


def test_a_killed_worker_fails_no_job_and_its_job_trains_to_the_same_weights(context_and_jobs):
    context, jobs = context_and_jobs
    reference = {r.member: r for r in InProcess(context).run(jobs)}
    results, killed = _run_with_kills(context, jobs, [2])
    assert len(killed) == 1 and sorted(results) == [0, 1, 2, 3]
    for member, result in results.items():
        assert result.error is None, result.error
        for name, tensor in reference[member].payload["model"].items():
            assert torch.equal(result.payload["model"][name], tensor), (member, name)
