"""Wall time of `growdsl check specs/quickstart.grow` against `python -c pass`, in one run.

`check`, `fmt` and `show` import neither torch nor scikit-learn (growdsl/lazy.py), so their start-up
is interpreter start-up plus lark, networkx, click, rich and growdsl's own modules. Each round runs
the interpreter alone, then each command, interleaved, so load from elsewhere falls on all; the
figures are medians over rounds, and the ratios are of those medians.

    python benchmarks/cli_startup.py --runs 21
    python benchmarks/cli_startup.py --runs 5 --baseline /tmp/base   # also time another checkout

The commands run as `python -m growdsl.cli` (the growdsl code of this checkout), in a fresh
process each, after one warm-up round, which writes lark's parser cache (~/.cache/growdsl) and
Python's bytecode cache of the checkout (`__pycache__/`, ignored by git): an installed growdsl has
its bytecode compiled (pip does it at install), so the commands are timed with it even where
PYTHONDONTWRITEBYTECODE is set, as it is in our development environment (compiling growdsl's
modules from source on every start adds about a tenth of a second: the row `check, no .pyc` times
a copy of this checkout's growdsl without its bytecode, the other packages' bytecode still cached).
`--baseline DIR` adds `growdsl check` of the growdsl in DIR (e.g. `git archive <commit> | tar -x
-C DIR`), run from DIR so that its code is the one imported.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the environment of the timed commands: the caller's, but free to write bytecode caches, and
# without PYTHONPATH, so that each imports the growdsl of the folder it runs in
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
NO_BYTECODE = {**ENV, "PYTHONDONTWRITEBYTECODE": "1"}
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "growdsl check": [sys.executable, "-m", "growdsl.cli", "check", "specs/quickstart.grow"],
    "growdsl fmt": [sys.executable, "-m", "growdsl.cli", "fmt", "specs/quickstart.grow"],
    "growdsl show": [sys.executable, "-m", "growdsl.cli", "show", "specs/quickstart.grow"],
}


def wall(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="rounds (each runs every command once)")
    parser.add_argument("--baseline", type=Path, help="another growdsl checkout to time `check` of")
    args = parser.parse_args()
    check = [sys.executable, "-m", "growdsl.cli", "check", str(ROOT / "specs" / "quickstart.grow")]
    with tempfile.TemporaryDirectory() as source_only:
        shutil.copytree(
            ROOT / "growdsl", Path(source_only) / "growdsl", ignore=shutil.ignore_patterns("__pycache__")
        )
        commands = {name: (command, ROOT, ENV) for name, command in COMMANDS.items()}
        commands["check, no .pyc"] = (check, Path(source_only), NO_BYTECODE)
        if args.baseline is not None:
            commands["baseline check"] = (check, args.baseline, ENV)
        for command in commands.values():  # warm-up: file cache, lark's and Python's bytecode caches
            wall(*command)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                times[name].append(wall(*command))
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<16} {'median s':>9} {'min s':>7} {'/ python -c pass':>17}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<16} {median:>9.3f} {min(samples):>7.3f} {median / base:>17.1f}")


if __name__ == "__main__":
    main()
