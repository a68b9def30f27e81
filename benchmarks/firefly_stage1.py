"""Does firefly's shorter default stage 1 change what it grows? (issue #11)

Issue #11 lowered firefly's defaults from `steps: 10, samples: 512, candidates: 64` to `steps: 2,
samples: 256, candidates: 32` so that a default step costs at most 1.5 epochs of the cost
benchmark's digits MLP (`benchmarks/firefly_cost.py`). This runs both, paired by seed (same
init, same data order), on the three tasks of `benchmarks/firefly_quality.py` (its specs and
protocol: 16 epochs, Adam, growth every 4 epochs), with one torch thread so that a rerun gives
the same digits, and reports each arm's final test accuracy and training loss (the epoch's mean
mini-batch loss) and the paired differences, new defaults minus old, with their standard error.

    python benchmarks/firefly_stage1.py [--tasks digits spirals cnn] [--seeds 0 1 2 3 4 5 6 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from firefly_quality import TASKS, _one, _spec  # benchmarks/ is on sys.path when run as a script

ARMS = {
    "defaults: steps 2, samples 256, candidates 32": "firefly()",
    "before #11: steps 10, samples 512, candidates 64": "firefly(steps: 10, samples: 512, candidates: 64)",
}


def _mean_sd(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def _mean_se(values: list[float]) -> str:
    return f"{statistics.mean(values):+.4f} ± {statistics.stdev(values) / len(values) ** 0.5:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    args = parser.parse_args()
    torch.set_num_threads(1)
    short, long_ = ARMS
    print(f"16 epochs, grow every 4, seeds {args.seeds}, 1 thread")
    print("| task | arm | test accuracy | training loss | params |\n| --- | --- | --- | --- | --- |")
    paired = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            results: dict[str, list[tuple[float, float, int]]] = {}
            for seed in args.seeds:
                for arm, grow in ARMS.items():
                    out = Path(tmp) / f"{task}-{seed}-{list(ARMS).index(arm)}"
                    results.setdefault(arm, []).append(_one(_spec(task, grow, seed, 16, 4), out))
            for arm, rows in results.items():
                accs, losses, params = zip(*rows, strict=True)
                size = statistics.mean(params)
                print(f"| {task} | {arm} | {_mean_sd(accs)} | {_mean_sd(losses)} | {size:.0f} |")
            d_acc = [s[0] - g[0] for s, g in zip(results[short], results[long_], strict=True)]
            d_loss = [s[1] - g[1] for s, g in zip(results[short], results[long_], strict=True)]
            paired.append((task, d_acc, d_loss))
    print("\n| task | Δ test accuracy (new − old, ± s.e.) | Δ training loss | lower loss |")
    print("| --- | --- | --- | --- |")
    for task, d_acc, d_loss in paired:
        lower = sum(d < 0 for d in d_loss)
        print(f"| {task} | {_mean_se(d_acc)} | {_mean_se(d_loss)} | {lower}/{len(d_loss)} |")


if __name__ == "__main__":
    main()
