"""Searches killed early lose nothing (issue #23, findings 2, 3, 9 and 10), with real processes and
SIGKILL: a random search logs and saves each trial as it finishes, so a kill keeps the finished
ones and `resume` trains only the rest, to the uninterrupted search's log; it draws its trials as
they are handed out, so one of 10,000 trials holds only what has started; a search killed before
it drew its first members resumes; a search whose every member diverges exits 3, as a diverged
run does."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from growdsl.lang import parse_text
from growdsl.search.driver import LOG, STATE, run_search
from growdsl.strict_json import loads

sys.path.insert(0, str(Path(__file__).parents[1]))
from sigkill import growdsl, kill_when  # noqa: E402

SPEC = """\
data spirals(n: 400, val: 0.2)
model m {{ linear({{8, 16, 24}}) as a tanh linear(8..24) tanh linear(classes) }}
train {{ epochs 4 batch 16 optimizer sgd(lr: {lr}, momentum: 0.9) seed 3 device cpu }}
search {search}
"""
RANDOM = "random(trials: {trials}, workers: 1)"


def _spec(tmp_path: Path, trials: int, lr: float = 0.1, search: str = RANDOM) -> Path:
    path = tmp_path / f"{search.partition('(')[0]}-{trials}-{lr}.grow"
    path.write_text(SPEC.format(search=search.format(trials=trials), lr=lr))
    return path


def _log(out: Path) -> list[dict]:
    text = (out / LOG).read_text() if (out / LOG).exists() else ""
    return [{k: v for k, v in loads(x).items() if k != "time"} for x in text.splitlines()]


def _evaluated(out: Path) -> int:
    try:
        return sum(line["event"] == "evaluate" for line in _log(out))
    except ValueError:  # being replaced
        return 0


def test_a_random_search_killed_midway_keeps_its_finished_trials_and_resumes_to_the_same_log(tmp_path):
    path = _spec(tmp_path, trials=6)
    reference = run_search(parse_text(path.read_text(), str(path)), tmp_path / "ref", quiet=True).dir
    out = tmp_path / "killed"
    proc = growdsl("run", str(path), "--out", str(out))
    assert kill_when(proc, lambda: _evaluated(out) >= 2)
    kept = [line for line in _log(out) if line["event"] == "evaluate"]
    state = torch.load(out / STATE, weights_only=True)
    assert len(kept) >= 2 and {line["member"] for line in kept} <= set(state["partial"]["done"])
    done = growdsl("resume", str(out))
    _, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    assert _log(out) == _log(reference)
    resumed = [line["member"] for line in _log(out) if line["event"] == "evaluate"]
    assert resumed == sorted(resumed)  # the round's lines in member order, whenever they finished


def _kib(pid: int, field: str) -> int:
    """A process's memory figure from /proc (VmRSS: resident now; VmHWM: its peak), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith(field + ":")).split()[1])


def test_a_random_search_of_10000_trials_stopped_after_its_first_holds_only_that_one(tmp_path):
    """Finding 3: trials are drawn as their jobs are handed out, and a trained one's weights are
    kept only while it leads, so a search of 10,000 trials killed after its first trial has drawn
    one or two, its state file is small, and its process's peak memory is that of a search of 3
    trials stopped there too (the two run side by side). Drawing every trial up front took
    minutes and hundreds of MB before the first trained."""
    outs = {trials: tmp_path / f"t{trials}" for trials in (3, 10_000)}
    procs = {n: growdsl("run", str(_spec(tmp_path, trials=n)), "--out", str(out)) for n, out in outs.items()}
    peaks: dict[int, int] = {}
    deadline = time.monotonic() + 60
    while len(peaks) < len(procs):
        for trials, proc in procs.items():
            if trials not in peaks and _evaluated(outs[trials]) >= 1:
                peaks[trials] = _kib(proc.pid, "VmHWM")
                kill_when(proc, lambda: True)
            assert trials in peaks or proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"no first trial within a minute: {peaks}"
        time.sleep(0.01)
    state = torch.load(outs[10_000] / STATE, weights_only=True)
    assert state["next_id"] <= 2 and len(state["members"]) <= 2
    assert (outs[10_000] / STATE).stat().st_size < 64 * 1024
    assert peaks[10_000] - peaks[3] < 32 * 1024, peaks  # KiB


def test_a_search_killed_before_its_first_members_were_drawn_resumes(tmp_path):
    """The state is written first, before the method draws its members (here a PBT population of
    200, drawn up front; a random search draws each trial as it trains)."""
    path = _spec(tmp_path, trials=200, search="pbt(population: {trials}, every: 1, workers: 1)")
    out = tmp_path / "early"

    def drawing() -> bool:
        try:
            return not torch.load(out / STATE, weights_only=True)["started"]
        except (FileNotFoundError, RuntimeError, EOFError, KeyError):
            return False

    for _ in range(6):  # a kill a moment late (after the draw) is tried again on a fresh folder
        proc = growdsl("run", str(path), "--out", str(out), "--force")
        assert kill_when(proc, drawing)
        if not torch.load(out / STATE, weights_only=True)["started"]:
            break
    else:
        raise AssertionError("no kill landed before the draw")
    resumed = growdsl("resume", str(out))

    def drawn() -> bool:
        try:
            return torch.load(out / STATE, weights_only=True)["started"]
        except (FileNotFoundError, RuntimeError, EOFError, KeyError):
            return False

    assert kill_when(resumed, drawn), resumed.communicate()[1]
    state = torch.load(out / STATE, weights_only=True)
    assert len(state["members"]) == 200


def test_a_search_whose_every_member_diverges_exits_3(tmp_path):
    path = _spec(tmp_path, trials=2, lr=1e30)
    path.write_text(path.read_text().replace("tanh", "relu"))  # tanh saturates; relu's loss overflows
    proc = growdsl("run", str(path), "--out", str(tmp_path / "nan"))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    assert "every member of the search diverged" in err and "Traceback" not in err


def test_a_search_of_a_million_trials_is_refused_at_check(tmp_path):
    """Finding 3: it drew every member up front, 2.8 GB before training anything."""
    from growdsl import api
    from growdsl.errors import SpecError

    path = _spec(tmp_path, trials=6)
    try:
        api.check_file(path, ["search.trials=1000000"])
    except SpecError as e:
        assert "trials" in e.message and "10000" in e.expected
    else:
        raise AssertionError("a million trials passed check")
