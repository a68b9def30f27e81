"""A new search is one module: a method written here, in the test, against the `Search` protocol
(growdsl/search/protocol.py) and registered by name, runs through the one loop, stops after a
round, and resumes (the registry picking it again by the name its state records) to exactly the
uninterrupted search's log and winner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from growdsl.lang import parse_text
from growdsl.options import Option, integer
from growdsl.run.member import initial_payload
from growdsl.search.driver import STATE, resume_search, run_search
from growdsl.search.methods import KNOWN_SEARCHES, SEARCH_MODULES, SEARCH_OPTIONS
from growdsl.search.protocol import Best, Finished, Job, Setup, new_member
from growdsl.search.registry import REGISTERED, register_search

SPEC = """\
data digits(test: 0.2, val: 0.15)
model m { flatten linear(12) relu linear(classes) }
train { epochs 3 batch 128 optimizer sgd(lr: 0.1, momentum: 0.9) seed 3 }
search halving(size: 4, workers: 1)
"""


class Halving:
    """Successive halving over seeds of the spec's model: every round trains the members still in
    one more epoch, then drops the worse half (none after the last round)."""

    round_name = "rung"
    files = ()

    def __init__(self, setup: Setup) -> None:
        self.setup, self.config = setup, setup.config

    def start(self, state: dict[str, Any]) -> None:
        state.update(alive={}, fitness={})
        for i in range(self.setup.search.options["size"]):
            seed = self.config.seed + i
            payload = initial_payload(
                self.setup.space, self.config, seed, self.config.epochs, {"spec": state["spec"]}
            )
            state["alive"][new_member(state)] = payload

    def restore(self, state: dict[str, Any]) -> None:
        pass  # nothing live: everything is in the state

    def rounds(self) -> int:
        return self.config.epochs

    def width(self, state: dict[str, Any]) -> int:
        return len(state["alive"])

    def jobs(self, state: dict[str, Any]):
        for member, payload in sorted(state["alive"].items()):
            yield Job(member, payload, 1)

    def record(self, state: dict[str, Any], done: Finished) -> dict[str, Any]:
        state["fitness"][done.job.member] = done.fitness
        if done.result.payload is not None:
            state["alive"][done.job.member] = done.result.payload
        return {"epoch": done.job.payload["epoch"] + 1}

    def after(self, state: dict[str, Any], done: list[Finished]) -> dict[str, Any]:
        ranked = sorted(state["alive"], key=lambda m: (-state["fitness"][m], m))
        dropped = ranked[max(1, len(ranked) // 2) :] if state["leg"] < self.rounds() else []
        for member in dropped:
            del state["alive"][member]
        return {"dropped": dropped}

    def best(self, state: dict[str, Any]) -> Best | None:
        winner = min(state["alive"], key=lambda m: (-state["fitness"][m], m))
        return Best(winner, state["alive"][winner], state["fitness"][winner])

    def finish(self, state: dict[str, Any], run_dir: Path, best: Best) -> dict[str, Path]:
        return {}


@pytest.fixture
def halving():
    """`search halving(size: N)` registered for the test, the registry as it was afterwards."""
    tables = (KNOWN_SEARCHES, SEARCH_OPTIONS, SEARCH_MODULES, REGISTERED)
    saved = [dict(table) for table in tables]
    register_search(
        "halving",
        Halving,
        description="successive halving",
        options={"size": Option(4, integer(2), "members")},
    )
    yield
    for table, before in zip(tables, saved, strict=True):
        table.clear()
        table.update(before)


def _log(run_dir: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run_dir / "search.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k != "time"} for line in lines]


def test_a_method_registered_in_a_test_runs_stops_and_resumes_through_the_one_loop(halving, tmp_path):
    spec = parse_text(SPEC, "halving.grow")
    whole = run_search(spec, tmp_path / "whole", quiet=True, in_process=True).dir
    log = _log(whole)
    assert [line["event"] for line in log] == (
        ["evaluate"] * 4 + ["rung"] + ["evaluate"] * 2 + ["rung"] + ["evaluate", "rung", "best"]
    )
    rungs = [line for line in log if line["event"] == "rung"]
    assert [len(r["dropped"]) for r in rungs] == [2, 1, 0] and [r["rung"] for r in rungs] == [1, 2, 3]
    last = next(line for line in log if line["event"] == "evaluate" and line["rung"] == 3)
    assert log[-1]["member"] == last["member"] and last["epoch"] == 3
    assert (whole / "model.pt").is_file() and (whole / "members" / "0" / "history.jsonl").is_file()

    cut = tmp_path / "cut"
    stopped = run_search(spec, cut, quiet=True, in_process=True, legs_limit=1)
    assert stopped.final_metrics == {"rungs": 1} and not (cut / "model.pt").exists()
    assert torch.load(cut / STATE, weights_only=True)["method"] == "halving"
    resume_search(cut, quiet=True, in_process=True)
    assert _log(cut) == log
    mine, theirs = (torch.load(d / "model.pt", weights_only=True) for d in (cut, whole))
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
