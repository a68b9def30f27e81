"""The laws of a run on several processes (docs/distributed.md), with 2 gloo processes on the CPU
started by torch's launcher (`growdsl run --nproc 2`, and `torchrun`): the same spec and seed
grow the same architecture as one process, with weights within `TOLERANCE` of its, after split,
firefly and path-level steps; a run whose rank dies mid-training ends with a clear error, and
resumes (on 2 processes or on 1) to the same result.

The weights cannot be bit-equal to one process's: each rank sums its part of a batch and the
ranks' sums are added, where one process adds all rows in one order; after the 20 epochs and 8
split edits of specs/quickstart.grow they differ by at most 6.9e-7 (docs/distributed.md).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from growdsl.lang import parse_text
from growdsl.run import resume as resume_run
from growdsl.run import run
from growdsl.run.distributed import launcher_command
from growdsl.run.rundir import read_history

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4  # largest |difference| of any weight from one process's
MLP = "flatten linear(16..48) as h1 tanh linear(16..48) as h2 tanh linear(classes)"
CELL = "flatten linear(16..48) as h1 tanh cell(16) as c1 linear(classes)"  # path-level acts on cells
GROWING = {  # transform: (model, grow block)
    "split": (MLP, "split(frac: 0.25, eps: 0.01, method: fast)"),
    "firefly": (MLP, "firefly(wider: 4, candidates: 4, eps: 0.01, frac: 0.25)"),
    # replacing the identity path by a trained linear is the edit whose measured gain clears the
    # rounding threshold here (a replication or an insert is function-preserving)
    "pathlevel": (CELL, "pathlevel(on: [c1], ops: [replace], steps: 5)"),
}
SPEC = """
data digits(test: 0.2)
block cell(c) {{ linear(c) tanh branch add {{ linear(c) | identity }} }}
model m {{ {model} }}
train {{ epochs {epochs} batch 64 optimizer sgd(lr: 0.1, momentum: 0.9) seed 0 device cpu }}
grow {{ every 1 epochs
 {grow} }}
"""


def spec_file(tmp_path: Path, transform: str, epochs: int = 3) -> Path:
    path = tmp_path / "spec.grow"
    model, grow = GROWING[transform]
    path.write_text(SPEC.format(model=model, grow=grow, epochs=epochs))
    return path


def growdsl(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "growdsl", *args, "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def finished(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc.returncode, out, err


def one_process(spec: Path, out: Path):
    return run(parse_text(spec.read_text(), str(spec)), out, quiet=True)


def weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "model.pt", weights_only=True)


def assert_same_growth(one: Path, two: Path) -> None:
    """The same edits, the same final graph, weights within TOLERANCE."""
    edits = [[r["edit"] for r in read_history(d) if r["event"] == "grow"] for d in (one, two)]
    assert edits[0] == edits[1] and edits[0]
    assert json.loads((one / "graph.json").read_text()) == json.loads((two / "graph.json").read_text())
    a, b = weights(one), weights(two)
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < TOLERANCE, worst


@pytest.mark.parametrize("transform", ["split", "firefly"])
def test_two_processes_grow_what_one_grows(tmp_path, transform):
    spec = spec_file(tmp_path, transform)
    code, out, err = finished(growdsl("run", str(spec), "--out", str(tmp_path / "two"), "--nproc", "2"))
    assert code == 0, err
    assert out.count("test acc") == 1  # rank 0 alone reports
    one_process(spec, tmp_path / "one")
    assert_same_growth(tmp_path / "one", tmp_path / "two")
    only_rank0 = {p.name for p in (tmp_path / "two").iterdir()}
    assert only_rank0 == {p.name for p in (tmp_path / "one").iterdir()}


API_RUN = """
import sys
from growdsl.lang import parse_text
from growdsl.run import run
spec, out = sys.argv[1:]
run(parse_text(open(spec).read(), spec), out, quiet=True, epochs_limit=2)
"""


def test_two_processes_take_the_path_level_step_one_takes(tmp_path):
    """Compared right after the step (epoch 2 of 3, through the API under torch's launcher): the
    edit grafts a linear with its batch norm, and batch norm then normalises each rank's part
    of a batch by its own statistics, which changes the training after the step."""
    spec = spec_file(tmp_path, "pathlevel")
    script = tmp_path / "api_run.py"
    script.write_text(API_RUN)
    done = subprocess.run(launcher_command(2, str(script), str(spec), str(tmp_path / "two")),
                          cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    run(parse_text(spec.read_text(), str(spec)), tmp_path / "one", quiet=True, epochs_limit=2)
    assert_same_growth(tmp_path / "one", tmp_path / "two")


def test_torchrun_runs_what_nproc_runs(tmp_path):
    spec = spec_file(tmp_path, "split", epochs=2)
    done = subprocess.run(
        launcher_command(2, "-m", "growdsl", "run", str(spec), "--out", str(tmp_path / "two"), "--quiet"),
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    one_process(spec, tmp_path / "one")
    assert_same_growth(tmp_path / "one", tmp_path / "two")


def ranks_of(launcher: int) -> dict[int, int]:
    """The worker processes of a launcher process: {rank: pid}, from their environment."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        rank = next((int(e[5:]) for e in env if e.startswith(b"RANK=")), None)
        if ppid == launcher and rank is not None:
            found[rank] = int(entry.name)
    return found


def epochs_logged(out: Path) -> list[int]:
    try:
        return [r["epoch"] for r in read_history(out) if r["event"] == "epoch"]
    except (OSError, ValueError):
        return []


def test_a_rank_killed_mid_training_ends_the_run_which_resumes_on_two_or_one(tmp_path):
    spec = spec_file(tmp_path, "split", epochs=4)
    reference = growdsl("run", str(spec), "--out", str(tmp_path / "whole"), "--nproc", "2")
    killed = tmp_path / "killed"
    proc = growdsl("run", str(spec), "--out", str(killed), "--nproc", "2")
    end = time.monotonic() + 300
    while 2 not in epochs_logged(killed):  # past a growth step, mid-way through epoch 3
        assert proc.poll() is None and time.monotonic() < end, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.01)
    os.kill(ranks_of(proc.pid)[1], signal.SIGKILL)
    started = time.monotonic()
    code, _, err = finished(proc)
    assert time.monotonic() - started < 60  # the launcher stops rank 0: no hang
    assert code == 2 and "rank 1 of 2 ended (SIGKILL)" in err, err
    assert "Traceback" not in err.split("rank 1 of 2")[-1]
    assert finished(reference)[0] == 0
    shutil.copytree(killed, tmp_path / "killed_on_one")
    code, _, err = finished(growdsl("resume", str(killed), "--nproc", "2"))
    assert code == 0, err
    resumed, whole = weights(killed), weights(tmp_path / "whole")
    assert resumed.keys() == whole.keys() and all(torch.equal(resumed[k], whole[k]) for k in whole)
    resume_run(tmp_path / "killed_on_one", quiet=True)
    assert_same_growth(tmp_path / "whole", tmp_path / "killed_on_one")


def test_a_rank_that_hangs_ends_the_run_within_the_timeout(tmp_path):
    spec = spec_file(tmp_path, "split", epochs=30)
    proc = growdsl("run", str(spec), "--out", str(tmp_path / "hung"), "--nproc", "2",
                   env={"GROWDSL_RANK_TIMEOUT": "5"})  # fmt: skip
    end = time.monotonic() + 300
    while 1 not in epochs_logged(tmp_path / "hung"):
        assert proc.poll() is None and time.monotonic() < end
        time.sleep(0.01)
    os.kill(ranks_of(proc.pid)[1], signal.SIGSTOP)
    started = time.monotonic()
    code, _, err = finished(proc, timeout=120)
    assert code == 2 and "rank 0 of 2 stopped with the error above" in err, err
    assert "rank 0: another rank did not answer within 5 s" in err and "Traceback" not in err, err
    assert time.monotonic() - started < 60
    assert read_history(tmp_path / "hung")  # the folder holds what was done


def test_nproc_is_taken_out_of_the_command_each_rank_runs():
    from growdsl.run.distributed import main_argv

    assert main_argv(["run", "a.grow", "--nproc", "2", "--quiet"]) == ["run", "a.grow", "--quiet"]
    assert main_argv(["resume", "runs/x", "--nproc=4"]) == ["resume", "runs/x"]


def test_a_search_is_refused_on_several_processes():
    code, _, err = finished(growdsl("run", "specs/random_search.grow", "--nproc", "2"))
    assert code == 2 and "--nproc runs one net on several processes" in err, err
