"""One owner per run directory (growdsl/run/rundir.py): a lock held for a run's life, a run
identity that `resume` checks, and no stale temporary files. Concurrency is tested with real
`growdsl` processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from growdsl.errors import CheckpointError
from growdsl.lang import parse_text
from growdsl.run import resume, run
from growdsl.run.rundir import read_history

ROOT = Path(__file__).resolve().parents[2]
LONG = """
data spirals(n: 2000)
model m { linear(64) relu linear(64) relu linear(classes) }
train { epochs 500 batch 16 optimizer sgd(lr: 0.05) seed 0 device cpu }
"""
SHORT = LONG.replace("epochs 500", "epochs 6").replace("n: 2000", "n: 300")


def growdsl(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "growdsl.cli", *args, "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # processes that run together share the cores
    )  # fmt: skip


def wait_for(condition, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def epochs_logged(out: Path) -> list[int]:
    return [r["epoch"] for r in read_history(out) if r["event"] == "epoch"]


def test_a_second_process_is_refused_while_a_run_owns_the_folder(tmp_path):
    (tmp_path / "s.grow").write_text(LONG)
    out = tmp_path / "run"
    first = growdsl("run", str(tmp_path / "s.grow"), "--out", str(out))
    try:
        wait_for(lambda: (out / "history.jsonl").is_file() and epochs_logged(out))
        second = growdsl("run", str(tmp_path / "s.grow"), "--out", str(out), "--force")
        third = growdsl("resume", str(out))
        for refused in (second, third):
            _, err = refused.communicate(timeout=120)
            assert refused.returncode == 2, err
            assert f"is in use by another growdsl process (pid {first.pid})" in err and "Traceback" not in err
        assert first.poll() is None  # still running, untouched
        epochs = epochs_logged(out)
        assert epochs == list(range(1, len(epochs) + 1))  # one run's lines only
    finally:
        first.kill()
        first.wait()


def test_two_runs_started_together_on_one_folder_leave_one_run(tmp_path):
    (tmp_path / "s.grow").write_text(SHORT)
    out = tmp_path / "run"
    procs = [growdsl("run", str(tmp_path / "s.grow"), "--out", str(out)) for _ in range(2)]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    assert epochs_logged(out) == list(range(1, 7))
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    identity = (out / "run.json").read_text()
    assert checkpoint["run_id"] in identity


def _spec(tmp_path, text: str = SHORT, name: str = "s.grow"):
    (tmp_path / name).write_text(text)
    return parse_text(text, str(tmp_path / name))


def test_resume_refuses_a_checkpoint_copied_in_from_another_run(tmp_path):
    run(_spec(tmp_path), tmp_path / "a", quiet=True, epochs_limit=2)
    run(_spec(tmp_path), tmp_path / "b", quiet=True, epochs_limit=3)  # the same spec: only the id differs
    shutil.copy(tmp_path / "b" / "checkpoint.pt", tmp_path / "a" / "checkpoint.pt")
    before = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    with pytest.raises(CheckpointError, match="belongs to another run"):
        resume(tmp_path / "a", quiet=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()} == before


def test_resume_refuses_a_checkpoint_whose_spec_is_not_the_runs(tmp_path):
    run(_spec(tmp_path), tmp_path / "a", quiet=True, epochs_limit=2)
    (tmp_path / "a" / "run.json").write_text(
        (tmp_path / "a" / "run.json").read_text().replace('"spec_sha256": "', '"spec_sha256": "0')
    )
    with pytest.raises(CheckpointError, match="another spec"):
        resume(tmp_path / "a", quiet=True)


def test_a_folder_from_before_run_identities_still_resumes(tmp_path):
    run(_spec(tmp_path), tmp_path / "a", quiet=True, epochs_limit=2)
    checkpoint = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    del checkpoint["run_id"]
    torch.save(checkpoint, tmp_path / "a" / "checkpoint.pt")
    (tmp_path / "a" / "run.json").unlink()
    assert resume(tmp_path / "a", quiet=True).final_metrics["epochs"] == 6


def test_resume_removes_stale_temporary_files_and_keeps_other_files(tmp_path):
    out = tmp_path / "a"
    run(_spec(tmp_path), out, quiet=True, epochs_limit=2)
    stale = [".checkpoint.pt.k2j4_x9q.tmp", ".model.pt.abcdefgh.tmp", ".history.jsonl.0a1b2c3d.tmp"]
    kept = [".notes.abcdefgh.tmp", "checkpoint.pt.abcdefgh.tmp", "mine.txt"]
    for name in stale + kept:
        (out / name).write_text("x")
    resume(out, quiet=True)
    names = {p.name for p in out.iterdir()}
    assert not names & set(stale) and set(kept) <= names
