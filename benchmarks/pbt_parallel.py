"""How well does a population search use the cores? (issue #10)

One PBT-NAS search of 8 members (`benchmarks/specs/pbt_parallel.grow`: CNNs whose epoch takes
seconds on a core) run with 1 worker (in the growdsl process, every core's threads for one member
at a time) and with N workers (N processes, `cores / N` threads each), on the local backend and on
Ray. Each backend's run is timed whole (worker or Ray start-up included) and per leg from the
search's own `leg` lines; the speedup is the 1-worker time over the N-worker time, measured in one
invocation. The exchange overhead of an exploit step is the part of a leg that is not member
training: `(leg wall time - compute / workers + exploit) / (leg wall time + exploit)`, with
`compute` the members' training seconds added up.

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

SPEC = Path(__file__).parent / "specs" / "pbt_parallel.grow"


def _search(out: Path, backend: str, workers: int) -> tuple[float, list[dict]]:
    spec = api.load(SPEC, [f"search.backend={backend}", f"search.workers={workers}"])
    start = time.perf_counter()
    api.run_spec(spec, out, quiet=True)
    wall = time.perf_counter() - start
    lines = [json.loads(x) for x in (out / "search.jsonl").read_text().splitlines()]
    return wall, [line for line in lines if line["event"] == "leg"]


def _overhead(leg: dict, workers: int) -> float:
    t = leg["time"]
    total = t["train"] + t["exploit"]
    return (t["train"] - t["compute"] / workers + t["exploit"]) / total


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
            leg_one = statistics.mean(leg["time"]["train"] for leg in one_legs)
            for backend in args.backends:
                many, legs = _search(Path(tmp) / f"{backend}-{repeat}", backend, args.workers)
                leg_many = statistics.mean(leg["time"]["train"] for leg in legs)
                exploits = [_overhead(leg, args.workers) for leg in legs]
                rows.append((backend, one, many, leg_one, leg_many, statistics.mean(exploits)))
    print(f"`{SPEC.name}`: 8 members; 1 worker against {args.workers} workers\n")
    print("| backend | 1 worker (s) | N workers (s) | speedup, whole | speedup, per leg | overhead share |")
    print("| --- | --- | --- | --- | --- | --- |")
    for backend, one, many, leg_one, leg_many, overhead in rows:
        speedups = f"{one / many:.2f} | {leg_one / leg_many:.2f}"
        print(f"| {backend} | {one:.1f} | {many:.1f} | {speedups} | {overhead:.3f} |")


if __name__ == "__main__":
    main()
