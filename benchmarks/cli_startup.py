"""Wall time of `growdsl check specs/quickstart.grow` against `python -c pass`, in one run.

`check`, `fmt` and `show` import neither torch nor scikit-learn (growdsl/lazy.py), so their start-up
is interpreter start-up plus lark, networkx, click, rich and growdsl's own modules. Each round runs
the interpreter alone, then each command, interleaved, so load from elsewhere falls on all; the
figures are medians over rounds, and the ratios are of those medians.

    python benchmarks/cli_startup.py --runs 21
    python benchmarks/cli_startup.py --runs 5 --baseline /tmp/base   # also time another checkout

The commands run as `python -m growdsl.cli` (the growdsl code of this checkout), in a fresh
process each, after one warm-up round (which also writes lark's parser cache, ~/.cache/growdsl).
`--baseline DIR` adds `growdsl check` of the growdsl in DIR (e.g. `git archive <commit> | tar -x
-C DIR`), run from DIR so that its code is the one imported.
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


def wall(command: list[str], cwd: Path = ROOT) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="rounds (each runs every command once)")
    parser.add_argument("--baseline", type=Path, help="another growdsl checkout to time `check` of")
    args = parser.parse_args()
    commands = {name: (command, ROOT) for name, command in COMMANDS.items()}
    if args.baseline is not None:
        spec = str(ROOT / "specs" / "quickstart.grow")
        commands["baseline check"] = ([sys.executable, "-m", "growdsl.cli", "check", spec], args.baseline)
    for command, cwd in commands.values():  # warm-up: file cache, lark's parser cache
        wall(command, cwd)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, (command, cwd) in commands.items():
            times[name].append(wall(command, cwd))
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<16} {'median s':>9} {'min s':>7} {'/ python -c pass':>17}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<16} {median:>9.3f} {min(samples):>7.3f} {median / base:>17.1f}")


if __name__ == "__main__":
    main()
