"""Populations on GPUs (growdsl/search/placement.py, docs/search.md "Placement"), checked on the
CPU: the device queue hands out the least-used GPU and takes slots back, never more than its
slots at once; the backend options read into a `Backend` and `check` states the concurrency;
each member's `train_member` receives its slot's device (on a machine without CUDA a GPU device
fails the member with torch's own refusal, which names the device); a local pool starts no more
workers than slots, and a dead worker's slot goes to the worker that replaces it; a placement
this machine cannot honour is refused before any folder is made."""

from __future__ import annotations

import os
import re
import signal

import pytest
import torch
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from growdsl import api
from growdsl.cli import main
from growdsl.errors import RunError
from growdsl.lang import parse_text
from growdsl.run.config import train_config
from growdsl.run.datasets import load_data
from growdsl.run.member import initial_payload
from growdsl.search import search_config
from growdsl.search.backends import (
    LocalPool,
    MemberJob,
    TrainingContext,
    check_ray_gpus,
    device_queue,
    ray_resources,
    run_job,
)
from growdsl.search.driver import run_search
from growdsl.search.placement import Backend, DeviceQueue, Slot, concurrency, per_gpu

NO_CUDA = not torch.cuda.is_available()


def test_the_queue_hands_out_the_least_used_gpu_and_takes_slots_back():
    queue = DeviceQueue(["cuda:0", "cuda:1"], per_device=2)
    assert [queue.take() for _ in range(4)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert queue.free == 0
    with pytest.raises(ValueError, match="every one of the 4 slots is held"):
        queue.take()
    queue.give_back("cuda:1")
    assert queue.free == 1 and queue.take() == "cuda:1"
    with pytest.raises(ValueError, match="no slot on cuda:2"):
        queue.give_back("cuda:2")


@given(st.lists(st.booleans(), max_size=40), st.integers(1, 3), st.integers(1, 3))
def test_the_queue_never_holds_more_than_its_slots_and_always_takes_the_least_used(ops, gpus, per):
    queue = DeviceQueue([f"cuda:{g}" for g in range(gpus)], per)
    held: list[str] = []
    for take in ops:
        if take and queue.free:
            fewest = min(queue.held[d] for d in queue.devices)
            device = queue.take()
            assert queue.held[device] - 1 == fewest
            held.append(device)
        elif held:
            queue.give_back(held.pop(0))
        assert all(queue.held[d] <= per for d in queue.devices)
        assert queue.free == queue.slots - len(held)


@pytest.mark.parametrize(("share", "members"), [(1.0, 1), (0.7, 1), (0.5, 2), (0.3, 3), (0.25, 4), (0.1, 10)])
def test_a_gpu_holds_as_many_members_as_whole_shares_fit(share, members):
    assert per_gpu(share) == members


def test_concurrency_is_the_workers_never_above_the_gpu_slots():
    two_gpus = Backend("local", gpus=(0, 1), gpu_share=0.5)
    assert concurrency(two_gpus, None) == 4  # the slots by default
    assert concurrency(two_gpus, 3) == 3 and concurrency(two_gpus, 9) == 4
    cores = os.cpu_count() or 1
    assert concurrency(Backend("local"), 5) == 5 and concurrency(Backend("local"), None) == cores
    assert ray_resources(0.5) == {"num_cpus": 1, "num_gpus": 0.5} and ray_resources(None) == {"num_cpus": 1}
    queue = device_queue(two_gpus)
    assert queue is not None and queue.devices == ["cuda:0", "cuda:1"] and queue.per_device == 2
    assert device_queue(Backend("local")) is None and device_queue(Backend("ray", gpu_share=0.5)) is None


SPEC = """\
data digits(test: 0.2, val: 0.15)
model m {{ flatten linear({{8, 12}}) relu linear(classes) }}
train {{ epochs 1 batch 128 optimizer sgd(lr: 0.1) seed 0 }}
search random(trials: 2, backend: {backend}{workers})
"""


def _spec(backend: str, workers: str = ""):
    return parse_text(SPEC.format(backend=backend, workers=workers), "placed.grow")


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("local", Backend("local")),
        ("local(gpus: [0, 1], per_member: 0.5)", Backend("local", gpus=(0, 1), gpu_share=0.5)),
        ("local(gpus: [3])", Backend("local", gpus=(3,), gpu_share=1.0)),
        ("ray(gpus_per_member: 0.5)", Backend("ray", gpu_share=0.5)),
        ('ray(address: "auto", gpus_per_member: 1)', Backend("ray", "auto", gpu_share=1.0)),
    ],
)
def test_the_backend_option_reads_into_a_placement(backend, expected):
    assert search_config(_spec(backend).search).backend == expected


@pytest.mark.parametrize(
    ("backend", "workers", "said"),
    [
        ("local(gpus: [0, 1], per_member: 0.5)", "",
         "search random: up to 4 members train at once, 2 per GPU on GPUs 0, 1 (4 slots, 0.5 of a GPU each)"),
        ("local(gpus: [0, 1], per_member: 0.5)", ", workers: 6",
         "(4 slots, 0.5 of a GPU each); workers: 6 is more than the slots, 4 are started"),
        ("local(gpus: [2], per_member: 0.25)", ", workers: 3",
         "up to 3 members train at once, 4 per GPU on GPU 2"),
        ("local", ", workers: 1", "search random: members train one at a time, in this process"),
        ("ray(gpus_per_member: 0.5)", ", workers: 4",
         "Ray tasks of 1 CPU and 0.5 GPU each (up to 2 on one GPU), on a Ray instance started here with 4"),
    ],
)  # fmt: skip
def test_check_states_how_many_members_train_at_once_and_where(tmp_path, backend, workers, said):
    path = tmp_path / "placed.grow"
    path.write_text(SPEC.format(backend=backend, workers=workers))
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 0, result.output
    assert said in result.output.splitlines()[1]
    assert result.output.splitlines()[1] == api.check_file(path).placement()


@pytest.fixture(scope="module")
def context_and_jobs():
    spec = parse_text(
        "data spirals(n: 200, val: 0.2)\nmodel m { linear(8) tanh linear(classes) }\n"
        "train { epochs 1 batch 32 optimizer sgd(lr: 0.05) seed 0 device cpu }\n",
        "slots.grow",
    )
    config = train_config(spec.train)
    context = TrainingContext(load_data(spec.data, 0), config, None, 1)
    graph = api.lower(spec)
    return context, [MemberJob(m, initial_payload(graph, config, m, 1), 1) for m in range(3)]


def test_a_member_trains_on_the_device_of_its_slot(context_and_jobs):
    context, jobs = context_and_jobs
    placed = run_job(context, jobs[0], Slot("cpu"))
    assert placed.error is None and placed.device == "cpu"
    assert all(t.device.type == "cpu" for t in placed.payload["model"].values())
    reference = run_job(context, jobs[0])
    assert reference.device is None
    assert all(torch.equal(placed.payload["model"][k], v) for k, v in reference.payload["model"].items())
    if NO_CUDA:  # train_member itself refuses the GPU it was handed, naming it
        gpu = run_job(context, jobs[0], Slot("cuda:1", 0.5))
        assert gpu.device == "cuda:1" and gpu.payload is None
        assert "device 'cuda:1' was asked for, but CUDA is not available" in gpu.error


@pytest.mark.skipif(not NO_CUDA, reason="the members would train on the GPU: the test reads their refusals")
def test_a_local_pool_starts_no_more_workers_than_slots_and_a_dead_workers_slot_goes_to_its_successor(
    context_and_jobs,
):
    context, jobs = context_and_jobs
    queue = DeviceQueue(["cuda:1"], per_device=1)
    pool = LocalPool(context, 2, queue, share=0.5)  # 2 workers asked, 1 slot: 1 started
    try:
        assert pool.workers == 1 and len(pool.pool) == 1 and queue.free == 0
        dead = pool.pool[0]
        os.kill(dead.process.pid, signal.SIGKILL)  # while it starts: its successor starts at once
        dead.process.join()
        results = {r.member: r for r in pool.run(jobs)}  # the dead worker's job runs in a fresh one
        (fresh,) = pool.pool
        assert fresh is not dead and fresh.slot == Slot("cuda:1", 0.5) and queue.free == 0
    finally:
        pool.close()
    assert queue.free == 1  # the slot is back once the pool is closed
    assert sorted(results) == [0, 1, 2]
    for result in results.values():  # each member reached train_member with its worker's GPU
        assert result.device == "cuda:1"
        assert "device 'cuda:1' was asked for, but CUDA is not available" in result.error


@pytest.mark.parametrize(
    ("backend", "device", "message"),
    [
        ("local(gpus: [0])", "", "CUDA is not available on this machine"),
        ("local(gpus: [0, 1], per_member: 0.5)", "cpu", "the members' device is cpu (train.device or"),
        ("ray(gpus_per_member: 0.5)", "cuda:0", "the members' device is cuda:0"),
    ],
)  # fmt: skip
def test_a_placement_this_machine_cannot_honour_is_refused_before_any_folder(
    tmp_path, backend, device, message
):
    if not NO_CUDA and device == "":
        pytest.skip("this machine has a GPU 0")
    with pytest.raises(RunError, match=re.escape(message)):
        run_search(_spec(backend), tmp_path / "run", device=device or None, quiet=True)
    assert not (tmp_path / "run").exists()


def test_a_ray_cluster_without_a_gpu_is_refused_for_a_gpu_share():
    """Ray would keep the members' tasks waiting for ever; `connect` checks its cluster_resources()."""
    with pytest.raises(RunError, match="started on this machine has 0 GPUs: its members would wait for ever"):
        check_ray_gpus(Backend("ray", gpu_share=0.5), {"CPU": 4.0})
    with pytest.raises(RunError, match="at 'auto' has 0.5 GPUs"):
        check_ray_gpus(Backend("ray", "auto", gpu_share=1.0), {"CPU": 4.0, "GPU": 0.5})
    check_ray_gpus(Backend("ray", gpu_share=0.5), {"CPU": 4.0, "GPU": 1.0})
    check_ray_gpus(Backend("ray"), {"CPU": 4.0})  # no share asked: no GPU needed
