"""A small population placed on GPU 0, two members at once (docs/search.md, "Placement").

`specs/random_search.grow` with `backend: local(gpus: [0], per_member: 0.5)`, 4 trials of
`--epochs` epochs: `growdsl check` must state 2 members at once on GPU 0, the search must finish
with every member trained on `cuda:0` (its `search.jsonl` lines name the device) in rounds of 2
workers, and the best member must be tested. Prints the placement line and a table row.

    python benchmarks/gpu_population.py            # on a GPU
    python benchmarks/gpu_population.py --dry      # on the CPU: the check's statement, and the
                                                   # same search in 2 local worker processes

`--dry` cannot place anything on a GPU: it checks the statement (machine-independent) and runs
the same population with `backend: local, workers: 2` on the CPU, so every piece but the GPU
runs. Exit code 0 when every check holds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from growdsl import api

SPEC = Path(__file__).resolve().parents[1] / "specs" / "random_search.grow"
PLACED = "local(gpus: [0], per_member: 0.5)"
STATED = "up to 2 members train at once, 2 per GPU on GPU 0 (2 slots, 0.5 of a GPU each)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry", action="store_true", help="on the CPU, without the placement")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--trials", type=int, default=4)
    args = parser.parse_args()
    common = [f"search.trials={args.trials}", f"train.epochs={args.epochs}"]
    placement = api.check(api.load(SPEC, [f"search.backend={PLACED}", *common])).placement()
    print(placement)
    if placement is None or STATED not in placement:
        print(f"check did not state: {STATED}", file=sys.stderr)
        return 1
    backend = ["search.backend=local", "search.workers=2"] if args.dry else [f"search.backend={PLACED}"]
    device = "cpu" if args.dry else "cuda"
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        run = api.run_spec(
            api.load(SPEC, [*backend, *common]), Path(folder) / "run", device=device, quiet=True
        )
        seconds = time.perf_counter() - start
        log = [json.loads(line) for line in (run.dir / "search.jsonl").read_text().splitlines()]
    members = [line for line in log if line["event"] in ("evaluate", "crash")]
    devices = sorted({line.get("device", "the spec's") for line in members})
    workers = sorted({line["workers"] for line in log if "workers" in line})
    print("| members | crashed | devices | workers per round | test acc | seconds |")
    print("| ---: | ---: | --- | --- | ---: | ---: |")
    crashed = sum(line["event"] == "crash" for line in members)
    accuracy = log[-1]["test_acc"]
    row = [len(members), crashed, ", ".join(devices), workers, f"{accuracy:.4f}", f"{seconds:.1f}"]
    print("| " + " | ".join(str(x) for x in row) + " |")
    expected = ["the spec's"] if args.dry else ["cuda:0"]
    held = len(members) == args.trials and not crashed and devices == expected and workers == [2]
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
