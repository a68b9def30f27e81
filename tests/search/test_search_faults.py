"""A population search's folder has the guarantees of a run's (growdsl/run/rundir.py): one owner,
a state that `resume` checks belongs to the search, no stale temporary files; and a real `growdsl
run` of a search killed with SIGKILL mid-leg, between a leg and its state write (the exploit step)
or during that write, then resumed, ends exactly as the uninterrupted search (same best weights,
same search log and member histories, no stray files)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import torch
from cell_search import cell_search

from growdsl.errors import CheckpointError
from growdsl.lang import parse_text
from growdsl.search.driver import LOG, STATE, resume_search, run_search
from growdsl.strict_json import loads

sys.path.insert(0, str(Path(__file__).parents[1]))
from sigkill import growdsl, inode, kill_at, kill_when  # noqa: E402

SPEC = """\
data spirals(n: 300, val: 0.2)
model m {{
    linear(8..24) as a
    choice {{ tanh | relu }}
    repeat 1..2 {{ linear({{8, 12}}) tanh }}
    linear(classes)
}}
train {{ epochs {epochs} batch 16 optimizer sgd(lr: 0.1, momentum: 0.9) seed 1 device cpu }}
search pbt(population: 3, every: 1, replace: 0.34, mix: 0.5, workers: {workers})
"""


def _spec(tmp_path: Path, workers: int = 1, epochs: int = 4):
    path = tmp_path / f"s{workers}-{epochs}.grow"
    path.write_text(SPEC.format(workers=workers, epochs=epochs))
    return parse_text(path.read_text(), str(path)), path


def _log(out: Path) -> list[dict]:
    return [{k: v for k, v in loads(x).items() if k != "time"} for x in (out / LOG).read_text().splitlines()]


def _saved_leg(out: Path) -> int:
    return torch.load(out / STATE, weights_only=True)["leg"] if (out / STATE).exists() else 0


def _logged_leg(out: Path) -> int:
    try:
        return max((r["leg"] for r in _log(out) if r["event"] == "evaluate"), default=0)
    except (FileNotFoundError, ValueError):  # not written yet, or being replaced
        return 0


def _writes(out: Path) -> set[str]:
    return {
        n
        for n in (os.listdir(out) if out.is_dir() else ())
        if n.startswith(f".{STATE}.") and n.endswith(".tmp")
    }


def _stray(out: Path) -> list[str]:
    return [str(p.relative_to(out)) for p in out.rglob(".*.tmp")]


# kill points, as in tests/run/test_faults.py: (when to kill, whether the kill landed there)


def mid_leg(out: Path):
    before = inode(out / STATE)

    def state_replaced() -> bool:  # the process trains the next leg
        return inode(out / STATE) not in (before, None)

    # the leg's members are logged as they finish, so its lines may be ahead of the leg the state counts
    return state_replaced, lambda: not _writes(out) and _logged_leg(out) - _saved_leg(out) in (0, 1)


def after_leg(out: Path):
    """The leg's evaluations logged, its exploit step and state write not yet done."""
    start = _saved_leg(out)

    def leg_logged() -> bool:
        return _logged_leg(out) > start

    return leg_logged, lambda: _saved_leg(out) == _logged_leg(out) - 1


def state_write(out: Path):
    """A state being replaced (before the first one, there is nothing to resume from)."""
    stale = _writes(out)

    def writing() -> bool:
        return (out / STATE).exists() and bool(_writes(out) - stale)

    return writing, writing


@pytest.mark.parametrize(
    ("workers", "points"), [(1, (mid_leg, state_write)), (2, (after_leg,))], ids=["in-process", "pool"]
)
def test_a_search_killed_anywhere_resumes_to_the_uninterrupted_result(tmp_path, workers, points):
    spec, path = _spec(tmp_path, workers, epochs=3)
    reference = run_search(spec, tmp_path / "ref", quiet=True, in_process=True).dir
    out = tmp_path / "killed"
    command = ["run", str(path), "--out", str(out)]
    for point in points:
        kill_at(out, command, point)
        command = ["resume", str(out)]
    done = growdsl(*command)
    _, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    assert _log(out) == _log(reference)
    for member in (reference / "members").iterdir():
        assert (out / "members" / member.name / "history.jsonl").is_file()
    mine = torch.load(out / "model.pt", weights_only=True)
    theirs = torch.load(reference / "model.pt", weights_only=True)
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert _stray(out) == []


def test_a_second_process_is_refused_while_a_search_owns_the_folder(tmp_path):
    _, path = _spec(tmp_path, epochs=200)
    out = tmp_path / "run"
    first = growdsl("run", str(path), "--out", str(out))
    try:
        training_next_leg = mid_leg(out)[0]
        while not training_next_leg():
            assert first.poll() is None, first.communicate()[1]
            time.sleep(0.01)
        second = growdsl("resume", str(out))  # a process: without the lock it would train for minutes
        try:
            _, err = second.communicate(timeout=60)
        finally:
            kill_when(second, lambda: True)
        assert second.returncode == 2 and f"pid {first.pid}" in err, err
    finally:
        kill_when(first, lambda: True)


def test_resume_refuses_another_searchs_state_removes_stale_files_and_starts_from_leg_0(tmp_path):
    spec, _ = _spec(tmp_path)
    a = run_search(spec, tmp_path / "a", quiet=True, in_process=True, legs_limit=0).dir  # resumable already
    b = run_search(spec, tmp_path / "b", quiet=True, in_process=True, legs_limit=1).dir
    shutil.copy(a / STATE, b / STATE)
    before = {p.name: p.read_bytes() for p in b.iterdir() if p.is_file()}
    with pytest.raises(CheckpointError, match="belongs to another run"):
        resume_search(b, quiet=True, in_process=True)
    assert {p.name: p.read_bytes() for p in b.iterdir() if p.is_file()} == before

    stale = [
        a / f".{STATE}.k1ll3d_x.tmp",
        a / f".{LOG}.abcdefgh.tmp",
        a / "members/0/.history.jsonl.zz9_zz9z.tmp",
    ]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a write")
    resume_search(a, quiet=True, in_process=True)
    assert _stray(a) == [] and (a / "model.pt").is_file()


PATHLEVEL = cell_search("episodes: 3, batch: 2, epochs: 1, workers: 1", "cpu")


def test_a_pathlevel_search_killed_mid_episode_resumes_to_the_uninterrupted_result(tmp_path):
    path = tmp_path / "cell.grow"
    path.write_text(PATHLEVEL)
    reference = run_search(
        parse_text(PATHLEVEL, str(path)), tmp_path / "ref", quiet=True, in_process=True
    ).dir
    out = tmp_path / "killed"
    command = ["run", str(path), "--out", str(out)]
    for _ in range(
        6
    ):  # kill while an episode after the saved one trains (the state on disk, no write under way)
        before = inode(out / STATE)
        proc = growdsl(*command)
        if kill_when(proc, lambda b=before: inode(out / STATE) not in (b, None)) and not _writes(out):
            break
        command = ["resume", str(out)]
    else:
        pytest.fail("no kill landed mid-episode in 6 tries")
    assert (out / "run.json").is_file()  # the controller's folder has a run identity too
    done = growdsl("resume", str(out))
    _, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    assert _log(out) == _log(reference)
    mine = torch.load(out / "model.pt", weights_only=True)
    theirs = torch.load(reference / "model.pt", weights_only=True)
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert _stray(out) == []

    shutil.copy(reference / STATE, out / STATE)  # another search's state: refused, nothing changed
    with pytest.raises(CheckpointError, match="belongs to another run"):
        resume_search(out, quiet=True, in_process=True)
