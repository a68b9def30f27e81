"""Real processes killed with SIGKILL, for the fault-injection tests of runs
(tests/run/test_faults.py) and searches (tests/search/test_search_faults.py).

A kill point is a function of the run folder returning two checks: when to kill (polled while the
process runs) and whether the kill landed there (a kill a moment late is still a valid kill, so
the point is checked after it, and tried again in a resumed process if it was missed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def growdsl(*args: str) -> subprocess.Popen:
    """`growdsl ARGS --quiet` in a process group of its own (its worker processes join it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "growdsl.cli", *args, "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def kill_when(proc: subprocess.Popen, condition, timeout: float = 180.0) -> bool:
    """SIGKILL `proc` as soon as `condition()` holds (False if it ended first); then its worker
    processes, which would otherwise outlive the test, by its process group."""
    end = time.monotonic() + timeout
    killed = False
    while proc.poll() is None and not killed:
        killed = condition()
        if killed:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert time.monotonic() < end, "timed out"
        time.sleep(0.0005)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return killed


def inode(path: Path) -> int | None:
    """The file's inode (an atomic write replaces it), None when there is no file."""
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def kill_at(out: Path, command: list[str], point, tries: int = 6) -> None:
    """Run `command`, then `growdsl resume OUT` while needed, SIGKILLing each at `point`, until a
    kill lands there."""
    for _ in range(tries):
        condition, landed = point(out)
        proc = growdsl(*command)
        if kill_when(proc, condition) and landed():
            return
        command = ["resume", str(out)]
    pytest.fail(f"no kill landed at {point.__name__} in {tries} tries")
