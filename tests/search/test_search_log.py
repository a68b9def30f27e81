"""A search's log is appended to, never rewritten (growdsl/search/searchlog.py), and its state holds
what the members still to train need, not the search's past: each finished trial costs the bytes
of its own files, whatever the number finished before it, as the operating system counts them.
A resumed search cuts the log back to what its state covers (a torn last line, lines written
after the last save) or writes again what the state holds and the log lost, so it ends with the
uninterrupted search's log and winner."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
import torch

from growdsl.errors import CheckpointError
from growdsl.lang import parse_text
from growdsl.search.driver import LOG, STATE, resume_search, run_search
from growdsl.search.random_search import RandomSearch
from growdsl.search.searchlog import in_member_order, read_log
from growdsl.strict_json import dumps

TRIALS = 40
# one architecture size whatever is drawn, so every trial's files are the same size
SPEC = """\
data spirals(n: 60, val: 0.25)
model m {{ linear(8) choice {{ tanh | relu }} linear(classes) }}
train {{ epochs {epochs} batch 64 optimizer sgd(lr: 0.1) seed 2 device cpu }}
search {search}
"""
PROC_IO = Path("/proc/self/io")


def _written() -> int:
    """The bytes this process has handed to write() so far (Linux's `wchar`): real writes, whatever
    code made them."""
    counters = dict(line.split(": ") for line in PROC_IO.read_text().splitlines())
    return int(counters["wchar"])


@pytest.mark.skipif(not PROC_IO.exists(), reason="needs Linux's /proc/self/io")
def test_each_finished_trial_writes_as_many_bytes_whatever_the_number_finished_before_it(
    tmp_path, monkeypatch
):
    """Between two trials' `record` calls the loop writes the first one's files: the state, its log
    line, its history. When the log was rewritten after each trial, and the state held it, those
    bytes grew by two log lines and more per trial finished before (about 280 bytes here); now
    they grow by the 3 bytes a trial adds to the round's list of finished members (`partial.done`,
    what resume skips), which torch.save's 64-byte alignment turns into a step now and then."""
    marks: list[int] = []
    record = RandomSearch.record

    def counted(self, state, done):
        marks.append(_written())
        return record(self, state, done)

    monkeypatch.setattr(RandomSearch, "record", counted)
    spec = parse_text(SPEC.format(search=f"random(trials: {TRIALS}, workers: 1)", epochs=1), "r.grow")
    run = run_search(spec, tmp_path / "run", quiet=True, in_process=True)
    per_trial = [b - a for a, b in itertools.pairwise(marks)]
    assert len(per_trial) == TRIALS - 1
    line = max(len(x) for x in (run.dir / LOG).read_text().splitlines())
    assert min(per_trial) > line  # a trial's files were written in between: the count sees them
    quarter = len(per_trial) // 4
    early, late = sum(per_trial[:quarter]) / quarter, sum(per_trial[-quarter:]) / quarter
    apart = len(per_trial) - quarter  # trials finished between the two quarters' middles
    assert (late - early) / apart < 16, (early, late, apart)  # bytes more per trial finished


PBT = "pbt(population: 3, every: 1, replace: 0.34, workers: 1)"
RANDOM = "random(trials: 5, workers: 1)"


def _untimed(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in line.items() if k != "time"} for line in read_log(run_dir)]


def _search(out: Path, search: str, **stop) -> Path:
    spec = parse_text(SPEC.format(search=search, epochs=2), "s.grow")
    return run_search(spec, out, quiet=True, in_process=True, **stop).dir


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> dict[str, tuple[list[dict], dict]]:
    """Each search run through uninterrupted: its log (without times) and its winner's weights."""
    runs = {
        name: _search(tmp_path_factory.mktemp(name), search)
        for name, search in (("pbt", PBT), ("random", RANDOM))
    }
    return {name: (_untimed(d), torch.load(d / "model.pt", weights_only=True)) for name, d in runs.items()}


def _resumes_to(out: Path, expected: tuple[list[dict], dict]) -> None:
    resume_search(out, quiet=True, in_process=True)
    log, weights = expected
    assert _untimed(out) == log
    mine = torch.load(out / "model.pt", weights_only=True)
    assert mine.keys() == weights.keys() and all(torch.equal(mine[k], weights[k]) for k in mine)


def _state(out: Path) -> dict:
    return torch.load(out / STATE, weights_only=True)


def test_resume_cuts_a_torn_line_and_lines_the_state_does_not_cover(whole, tmp_path):
    out = _search(tmp_path / "cut", PBT, legs_limit=1)
    covered = (out / LOG).stat().st_size
    assert covered == _state(out)["log_bytes"] + sum(len(dumps(x)) + 1 for x in _state(out)["log_next"])
    with open(out / LOG, "a") as f:  # a line logged after the state (as the code before wrote), one torn
        f.write(dumps({"event": "evaluate", "leg": 2, "member": 0, "fitness": 0.5}) + '\n{"event": "evalu')
    _resumes_to(out, whole["pbt"])


def test_resume_logs_again_the_lines_of_a_state_whose_process_was_killed_before_it_logged_them(
    whole, tmp_path
):
    out = _search(tmp_path / "cut", PBT, legs_limit=1)
    state = _state(out)
    # its members' lines were logged as each finished; the exploit step's and the leg's come last
    assert [line["event"] for line in state["log_next"]] == ["exploit", "leg"]
    os.truncate(out / LOG, state["log_bytes"])  # killed between the state's write and the append
    _resumes_to(out, whole["pbt"])


def test_a_log_shorter_than_its_state_covers_is_refused_and_left_as_it_is(tmp_path):
    out = _search(tmp_path / "cut", PBT, legs_limit=1)
    os.truncate(out / LOG, _state(out)["log_bytes"] - 1)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(CheckpointError, match="does not hold the .* bytes its search's state covers"):
        resume_search(out, quiet=True, in_process=True)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


class Interrupted(Exception):
    """Stands for a kill after a trial trained and before it was recorded."""


def _stopped_halfway(out: Path, monkeypatch, trials: int) -> Path:
    """A random search interrupted as its trial `trials` (counting from 1) finished: the state
    saved after the trials before it, halfway through the search's one round."""
    record, calls = RandomSearch.record, []

    def interrupted(self, state, done):
        calls.append(done.job.member)
        if len(calls) == trials:
            raise Interrupted
        return record(self, state, done)

    with monkeypatch.context() as patch:
        patch.setattr(RandomSearch, "record", interrupted)
        with pytest.raises(Interrupted):
            _search(out, RANDOM)
    return out


def test_a_random_search_stopped_between_trials_resumes_over_a_torn_line_to_the_same_log(
    whole, tmp_path, monkeypatch
):
    out = _stopped_halfway(tmp_path / "cut", monkeypatch, trials=3)
    state = _state(out)
    assert state["partial"] == {"leg": 0, "done": [0, 1], "open": []}  # one worker: 2 not handed yet
    assert [line["member"] for line in read_log(out)] == [0, 1]
    with open(out / LOG, "a") as f:
        f.write('{"event": "evaluate", "leg"')
    _resumes_to(out, whole["random"])


def test_a_state_of_format_2_holding_its_log_resumes_to_the_same_log(whole, tmp_path, monkeypatch):
    """The code before wrote the whole log into the state, its round's lines from `partial.first`
    in the order they finished, and rewrote the file from it."""
    out = _stopped_halfway(tmp_path / "cut", monkeypatch, trials=4)
    state = _state(out)
    old = {k: v for k, v in state.items() if k not in ("log", "log_next", "log_bytes")}
    old.update(format=2, log=read_log(out), partial={"leg": 0, "done": [0, 1, 2], "first": 0})
    torch.save(old, out / STATE)
    _resumes_to(out, whole["random"])


def test_a_search_killed_while_it_finished_resumes_into_its_finish(whole, tmp_path):
    """Every round done and saved: nothing left to train (a random search's width is then 0), the
    `best` line, which no state covers, cut and written anew."""
    out = _search(tmp_path / "done", RANDOM)
    (out / "model.pt").unlink()
    _resumes_to(out, whole["random"])


def test_a_rounds_lines_wait_for_the_lower_members_still_training():
    waiting = [{"member": m} for m in (7, 3, 5, 9)]
    assert in_member_order(waiting, [6, 8]) == 2 and [x["member"] for x in waiting] == [3, 5, 7, 9]
    assert in_member_order(waiting, []) == 4
    assert in_member_order(waiting, [2]) == 0
    assert in_member_order(waiting, None) == 0  # who is training is not known: the round's end
