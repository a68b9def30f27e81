"""Fault injection with real processes: a `growdsl run` killed with SIGKILL mid-epoch, right after
a growth step and during the checkpoint write, then resumed, ends exactly as a run that was never
interrupted (weights `torch.equal`, history identical but for times, no stray files); a run whose
disk fills up ends with a clear error and loses nothing it had written.

The kill points are found from outside, by polling the run directory: the checkpoint replaced
(the process is then in the next epoch), a `grow` line in the history (the growth step is done,
its checkpoint not yet written), a `.checkpoint.pt.*.tmp` file (the write is under way). A kill
that lands a moment late is still a valid kill, so each point is checked after the kill, and the
write is tried again, on the next epochs, until one is caught mid-write.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from growdsl.lang import parse_text
from growdsl.run import resume as resume_run
from growdsl.run import run
from growdsl.run.rundir import read_history

sys.path.insert(0, str(Path(__file__).parents[1]))
from sigkill import growdsl, inode, kill_at  # noqa: E402

GROWING = {
    "split": "split(frac: 0.25, eps: 0.01, method: fast)",
    "firefly": "firefly(wider: 4, eps: 0.01, frac: 0.25)",
}
SPEC = """
data spirals(n: 400)
model m {{ linear(256) tanh linear(16..64) as h1 tanh linear(16..64) as h2 tanh linear(classes) }}
train {{ epochs 12 batch 16 optimizer sgd(lr: 0.05, momentum: 0.9) seed 3 device cpu }}
grow {{ every 3 epochs
 {grow} }}
"""


def checkpoint_epoch(out: Path) -> int:
    return torch.load(out / "checkpoint.pt", weights_only=True)["epoch"]


def events(out: Path, event: str) -> list[int]:
    try:
        return [r["epoch"] for r in read_history(out) if r["event"] == event]
    except ValueError:  # a line being written
        return []


def checkpoint_writes(out: Path) -> set[str]:
    return {n for n in os.listdir(out) if n.startswith(".checkpoint.pt.") and n.endswith(".tmp")}


def untimed(history):
    return [{k: v for k, v in r.items() if k != "time"} for r in history]


# A kill point: called before a process starts, it returns (when to kill, whether the kill landed
# there), both judged against the folder as the process found it.


def mid_epoch(out: Path):
    before = inode(out / "checkpoint.pt")

    def checkpoint_replaced() -> bool:  # then the process trains the next epoch
        return inode(out / "checkpoint.pt") not in (before, None)

    def landed() -> bool:  # no write under way, no epoch logged past the checkpoint
        return not checkpoint_writes(out) and len(events(out, "epoch")) == checkpoint_epoch(out)

    return checkpoint_replaced, landed


def after_growth(out: Path):
    start = checkpoint_epoch(out) if (out / "checkpoint.pt").exists() else 0
    history = inode(out / "history.jsonl")

    def new_grow_lines() -> list[int]:  # in the history this process rewrote at its start
        fresh = inode(out / "history.jsonl") not in (history, None)
        return [e for e in events(out, "grow") if e > start] if fresh else []

    return (lambda: bool(new_grow_lines())), (lambda: checkpoint_epoch(out) == new_grow_lines()[0] - 1)


def checkpoint_write(out: Path):
    stale = checkpoint_writes(out)  # left by an earlier kill; the new process removes them
    return (lambda: bool(checkpoint_writes(out) - stale)), (lambda: bool(checkpoint_writes(out) - stale))


@pytest.mark.parametrize("transform", sorted(GROWING))
def test_a_run_killed_anywhere_resumes_to_the_uninterrupted_result(transform, tmp_path):
    (tmp_path / "s.grow").write_text(SPEC.format(grow=GROWING[transform]))
    spec = parse_text((tmp_path / "s.grow").read_text(), str(tmp_path / "s.grow"))
    whole = run(spec, tmp_path / "whole", quiet=True)
    assert {r["event"] for r in whole.history} >= {"epoch", "grow"}
    out = tmp_path / "killed"
    resume = ["resume", str(out)]

    kill_at(out, ["run", str(tmp_path / "s.grow"), "--out", str(out)], mid_epoch)
    kill_at(out, resume, after_growth)
    kill_at(out, resume, checkpoint_write)

    resume_run(out, quiet=True)  # in this process: each `growdsl` process above costs seconds to start
    resumed = torch.load(out / "model.pt", weights_only=True)
    expected = whole.model.state_dict()
    assert resumed.keys() == expected.keys()
    assert all(torch.equal(resumed[k], expected[k]) for k in expected)
    assert untimed(read_history(out)) == untimed(read_history(tmp_path / "whole"))
    assert {p.name for p in out.iterdir()} == {p.name for p in (tmp_path / "whole").iterdir()}


@pytest.fixture
def small_disk(tmp_path):
    """A 120 KB tmpfs: room for a run's first checkpoint, not for writing the second beside it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=120k", "tmpfs", str(disk)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root with CAP_SYS_ADMIN (chmod does not stop root)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_run_whose_disk_fills_up_ends_with_a_clear_error_and_loses_nothing(tmp_path, small_disk):
    (tmp_path / "s.grow").write_text(SPEC.format(grow=GROWING["split"]))
    out = small_disk / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # a file of the user's, in a folder run with --force
    proc = growdsl("run", str(tmp_path / "s.grow"), "--out", str(out), "--force")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert f"error: {out}/" in err and "No space left on device" in err and "Traceback" not in err
    assert (out / "notes.txt").read_text() == "mine"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert checkpoint_epoch(out) == 0  # the last checkpoint written whole is intact

    subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)], check=True)  # room again
    resume_run(out, quiet=True)
    spec = parse_text((tmp_path / "s.grow").read_text(), str(tmp_path / "s.grow"))
    whole = run(spec, tmp_path / "whole", quiet=True)
    resumed = torch.load(out / "model.pt", weights_only=True)
    assert all(torch.equal(resumed[k], v) for k, v in whole.model.state_dict().items())
    assert untimed(read_history(out)) == untimed(whole.history)
