"""A local worker process killed with SIGKILL fails only the job it ran, and only on its second
death: the pool knows each worker's job, starts a fresh worker in its place and runs the job
once more there, so the others never notice and a search ends as if nothing happened (the same
payload trains to the same weights). Real worker processes, real kills.

A kill must land while the job runs in the worker killed, never in a fresh worker still
starting (whose death would count against whatever job it was handed): the member to kill has a
`beacon` in its model (tests/search/beacon_plugin.py, a plugin every worker loads), which writes
the id of the process training it into a folder once it trains there, and the test kills that
process, then waits for the next one."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from growdsl import api, plugins
from growdsl.ir import ops
from growdsl.lang import parse_text
from growdsl.run.config import train_config
from growdsl.run.datasets import load_data
from growdsl.run.member import initial_payload
from growdsl.search.backends import InProcess, LocalPool, MemberJob, TrainingContext
from growdsl.search.driver import run_search

BEACON = str(Path(__file__).with_name("beacon_plugin.py").resolve())
SPEC = """\
data spirals(n: 400, val: 0.2)
model m {{ linear(64) tanh {beacon} linear(64) tanh linear(classes) }}
train {{ epochs 3 batch 8 optimizer sgd(lr: 0.05) seed 0 device cpu }}
"""


@pytest.fixture(scope="module")
def beacon_op():
    """The plugin loaded here too (to build the beacon member's payload), and unloaded after."""
    saved_ops, saved_weight = dict(ops.OPS), list(ops.WEIGHT_OPS)
    saved_enabled, saved_loaded = list(plugins._enabled), dict(plugins._loaded)
    plugins.load_plugins([BEACON])
    yield
    ops.OPS.clear()
    ops.OPS.update(saved_ops)
    ops.WEIGHT_OPS[:] = saved_weight
    plugins._enabled[:] = saved_enabled
    plugins._loaded.clear()
    plugins._loaded.update(saved_loaded)


def _jobs(lit: int) -> tuple[TrainingContext, list[MemberJob]]:
    """Four members; member `lit`'s model holds the beacon (the plugin loaded: `beacon_op`)."""
    spec = parse_text(SPEC.format(beacon=""), "death.grow")
    config = train_config(spec.train)
    context = TrainingContext(load_data(spec.data, 0), config, None, 1, (BEACON,))
    jobs = []
    for member in range(4):
        graph = api.lower(parse_text(SPEC.format(beacon="beacon" if member == lit else ""), "death.grow"))
        jobs.append(MemberJob(member, initial_payload(graph, config, member, config.epochs), config.epochs))
    return context, jobs


def _kill_each_beacon(pool: LocalPool, folder: Path, kills: int, killed: list[int]) -> None:
    """`kills` times: wait for a pool worker's beacon (its job trains there now), SIGKILL it."""
    deadline = time.monotonic() + 120
    while len(killed) < kills:
        assert time.monotonic() < deadline, "the beacon member never trained"
        workers = {worker.process.pid for worker in list(pool.pool)}
        for beacon in folder.iterdir():
            if beacon.name.isdigit() and int(beacon.name) in workers:
                os.kill(int(beacon.name), signal.SIGKILL)
                beacon.unlink()  # a later worker given the same pid writes its own
                killed.append(int(beacon.name))
        time.sleep(0.01)


def _run_with_kills(context, jobs, kills: int, folder: Path):
    """Run `jobs` on two workers while a thread kills the beacon member's worker `kills` times."""
    pool = LocalPool(context, 2)
    killed: list[int] = []
    thread = threading.Thread(target=_kill_each_beacon, args=(pool, folder, kills, killed), daemon=True)
    thread.start()
    try:
        results = {r.member: r for r in pool.run(jobs)}
    finally:
        pool.close()
    thread.join(timeout=5)
    return results, killed


@pytest.fixture
def beacons(tmp_path, monkeypatch) -> Path:
    """The beacons' folder, named to the workers through their environment."""
    folder = tmp_path / "beacons"
    folder.mkdir()
    monkeypatch.setenv("GROWDSL_BEACON", str(folder))
    return folder


def test_a_killed_worker_fails_no_job_and_its_job_trains_to_the_same_weights(beacon_op, beacons):
    context, jobs = _jobs(lit=2)
    reference = {r.member: r for r in InProcess(context).run(jobs)}
    for beacon in beacons.iterdir():  # this process's own, from the reference
        beacon.unlink()
    results, killed = _run_with_kills(context, jobs, 1, beacons)
    assert len(killed) == 1 and sorted(results) == [0, 1, 2, 3]
    for member, result in results.items():
        assert result.error is None, result.error
        for name, tensor in reference[member].payload["model"].items():
            assert torch.equal(result.payload["model"][name], tensor), (member, name)


def test_a_job_whose_worker_dies_twice_fails_alone_with_the_reason(beacon_op, beacons):
    context, jobs = _jobs(lit=3)
    results, killed = _run_with_kills(context, jobs, 2, beacons)
    assert len(set(killed)) == 2 and sorted(results) == [0, 1, 2, 3]
    assert results[3].payload is None and "worker process died twice" in results[3].error
    assert "killed by signal 9" in results[3].error
    assert all(results[m].error is None for m in (0, 1, 2))


SEARCH = """\
data spirals(n: 300, val: 0.2)
model m { linear({16, 32}) tanh beacon linear(classes) }
train { epochs 2 batch 16 optimizer sgd(lr: 0.1, momentum: 0.9) seed 4 device cpu }
search pbt(population: 4, every: 1, workers: 2)
"""


def _untimed_log(run_dir: Path) -> list[dict]:
    lines = (run_dir / "search.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


def _parent(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone
        return None
    return int(next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1])


def test_a_search_whose_worker_is_killed_ends_as_in_one_process_without_a_crash(beacon_op, beacons, tmp_path):
    """Finding 1, end to end: PBT on two worker processes, the first worker to train a member
    SIGKILLed mid-job. The job runs again in a fresh worker; no member crashes, none is replaced
    by a copy, and the search's log is the one trained in this process."""
    spec = parse_text(SEARCH, str(tmp_path / "s.grow"))
    reference = run_search(spec, tmp_path / "ref", quiet=True, in_process=True).dir
    for beacon in beacons.iterdir():  # this process's own, from the reference
        beacon.unlink()
    killed: list[int] = []

    def kill_first_worker() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            for beacon in beacons.iterdir():
                if beacon.name.isdigit() and _parent(int(beacon.name)) == os.getpid():  # a worker
                    os.kill(int(beacon.name), signal.SIGKILL)
                    killed.append(int(beacon.name))
                    break
            time.sleep(0.01)

    thread = threading.Thread(target=kill_first_worker, daemon=True)
    thread.start()
    run_search(spec, tmp_path / "pool", quiet=True)
    thread.join(timeout=5)
    log = _untimed_log(tmp_path / "pool")
    assert len(killed) == 1 and not [line for line in log if line["event"] == "crash"]
    assert log == _untimed_log(reference)
