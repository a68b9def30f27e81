"""How well does a population search use the cores? (issue #10)

One PBT-NAS search of 8 members (`benchmarks/specs/pbt_parallel.grow`: CNNs whose epoch takes
about a second or more) run with 1 worker (in the growdsl process, all the cores' threads for one
member at a time), in the growdsl process with `cores / N` threads a member (the sequential
reference for N workers: the same work, one member at a time), and with N workers (N processes,
`cores / N` threads each) on the local backend and on Ray. Each run is timed whole (worker or Ray
start-up included) and per leg from the search's own `leg` lines; speedups are ratios of times
measured in one invocation: against the 1-worker run (what a user gains) and against the
sequential reference (how well the workers scale). The exchange overhead of an exploit step is
the part of a leg that is not member training: `(leg wall time - compute / workers + after) /
(leg wall time + after)`, with `compute` the members' training seconds added up.

    python benchmarks/pbt_parallel.py [--workers 2] [--backends local ray] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from growdsl import api
from growdsl.search.driver import run_search

SPEC = Path(__file__).parent / "specs" / "pbt_parallel.grow"


def _search(out: Path, backend: str, workers: int, in_process: bool = False) -> tuple[float, list[dict]]:
    spec = api.load(SPEC, [f"search.backend={backend}", f"search.workers={workers}"])
    start = time.perf_counter()
    run_search(spec, out, quiet=True, in_process=in_process)
    wall = time.perf_counter() - start
    lines = [json.loads(x) for x in (out / "search.jsonl").read_text().splitlines()]
    return wall, [line for line in lines if line["event"] == "leg"]


def _overhead(leg: dict, workers: int) -> float:
    t = leg["time"]
    total = t["train"] + t["after"]
    return (t["train"] - t["compute"] / workers + t["after"]) / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backends", nargs="+", default=["local", "ray"])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            one, one_legs = _search(Path(tmp) / f"one-{repeat}", "local", 1)
            seq, seq_legs = _search(Path(tmp) / f"seq-{repeat}", "local", args.workers, in_process=True)
            for backend in args.backends:
                many, legs = _search(Path(tmp) / f"{backend}-{repeat}", backend, args.workers)
                exploits = [_overhead(leg, args.workers) for leg in legs]
                rows.append((backend, one, seq, many, _leg(one_legs), _leg(seq_legs), _leg(legs), exploits))
    print(f"`{SPEC.name}`: 8 members; 1 worker, the sequential reference, {args.workers} workers\n")
    print(
        "| backend | 1 worker (s) | sequential (s) | N workers (s) | speedup vs 1 worker, whole / per leg "
        "| speedup vs sequential, whole / per leg | overhead share |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for backend, one, seq, many, leg_one, leg_seq, leg_many, exploits in rows:
        gains = f"{one / many:.2f} / {leg_one / leg_many:.2f} | {seq / many:.2f} / {leg_seq / leg_many:.2f}"
        print(
            f"| {backend} | {one:.1f} | {seq:.1f} | {many:.1f} | {gains} | {statistics.mean(exploits):.3f} |"
        )


def _leg(legs: list[dict]) -> float:
    """A leg's mean wall time."""
    return statistics.mean(leg["time"]["train"] for leg in legs)


if __name__ == "__main__":
    main()
