"""Wall time of `growdsl check specs/quickstart.grow` against `python -c pass`, in one run.

`check`, `fmt` and `show` import neither torch nor scikit-learn (growdsl/lazy.py), so their start-up
is interpreter start-up plus lark, networkx, click, rich and growdsl's own modules. Each round runs
the interpreter alone, then each command, interleaved, so load from elsewhere falls on all; the
figures are medians over rounds, and the ratios are of those medians.

    python benchmarks/cli_startup.py --runs 21

The commands run as `python -m growdsl.cli` (the growdsl code of this checkout), in a fresh
process each, after one warm-up round (which also writes lark's parser cache, ~/.cache/growdsl).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "growdsl check": [sys.executable, "-m", "growdsl.cli", "check", "specs/quickstart.grow"],
    "growdsl fmt": [sys.executable, "-m", "growdsl.cli", "fmt", "specs/quickstart.grow"],
    "growdsl show": [sys.executable, "-m", "growdsl.cli", "show", "specs/quickstart.grow"],
}


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="rounds (each runs every command once)")
    args = parser.parse_args()
    for command in COMMANDS.values():  # warm-up: file cache, lark's parser cache
        wall(command)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, command in COMMANDS.items():
            times[name].append(wall(command))
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<16} {'median s':>9} {'min s':>7} {'/ python -c pass':>17}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<16} {median:>9.3f} {min(samples):>7.3f} {median / base:>17.1f}")


if __name__ == "__main__":
    main()
