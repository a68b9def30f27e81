"""A search's run folder read back, for `export`, `report` and `compare` (`driver.py` and
`pathlevel.py` write it; this module only reads).

A finished search holds its fittest member as the run's result at its top (`history.jsonl`,
`graph.json`, `model.pt`, `metrics.json`, ...), so whatever reads a run reads that member; its
log `search.jsonl` ends with a `best` line. A search that stopped before its end, or whose every
member crashed or diverged, has no result: `SearchLog.ending` says which, in words, for the
messages and the rows of `compare`. The log's lines are checked as read (growdsl/run/records.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growdsl.errors import RunError
from growdsl.run.loading import LoadedRun, load_run
from growdsl.run.records import integer, number_or_null, read_json_lines, seconds
from growdsl.search.driver import LOG

LOG_FIELDS = {
    "evaluate": {"fitness": (number_or_null, True), "params": (integer, False), "flops": (integer, False)},
    "best": {"fitness": (number_or_null, True), "test_acc": (number_or_null, False)},
    "leg": {"time": (seconds, False)},
    "episode": {"time": (seconds, False)},
    "round": {"time": (seconds, False)},
}


@dataclass(frozen=True)
class SearchLog:
    """What a search's log says: its lines, the `best` line (None: no result), how many members
    it trained, and the wall time of its legs or episodes (None before the first is logged)."""

    lines: list[dict[str, Any]]
    best: dict[str, Any] | None
    members: int
    seconds: float | None

    @property
    def ending(self) -> str:
        """How the search ended, in words."""
        if self.best is not None:
            return f"search: member {self.best['member']} best of {self.members}"
        evaluated = [r for r in self.lines if r["event"] == "evaluate"]
        if self.members and not any(r["fitness"] is not None for r in evaluated):
            return f"search: every one of its {self.members} members crashed or diverged"
        return "search: stopped before its end (growdsl resume continues it)"


def read_search_log(run_dir: Path) -> SearchLog:
    """The search's log, checked; a RunError naming `search.jsonl:LINE:` for a damaged line."""
    lines = read_json_lines(run_dir / LOG, LOG_FIELDS)
    members = {r["member"] for r in lines if r["event"] in ("evaluate", "crash") and "member" in r}
    # a round's line (a leg, an episode, a cycle: whatever the method names its rounds) holds its
    # wall time as `train` and `after`; `compute` adds up the members' own times, which overlap when
    # they train in parallel (an evaluate line's `time` is a number: one member's)
    timed = [r["time"] for r in lines if isinstance(r.get("time"), dict)]
    wall = sum(v or 0.0 for t in timed for k, v in t.items() if k != "compute") if timed else None
    best = next((r for r in reversed(lines) if r["event"] == "best"), None)
    return SearchLog(lines, best, len(members), wall)


def load_result(run_dir: Path) -> LoadedRun:
    """The search's result, its fittest member (graph and trained module); a RunError saying how
    the search ended when it has none."""
    ending = read_search_log(run_dir)
    if ending.best is None:
        raise RunError(f"{run_dir} holds no result: {ending.ending.removeprefix('search: ')}")
    return load_run(run_dir)
