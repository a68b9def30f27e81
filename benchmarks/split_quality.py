"""Does splitting grow better networks than the alternatives at equal size? (issue #3)

Every arm is a whole run of a spec in benchmarks/specs/, through `growdsl.api` exactly as
`growdsl run SPEC --set train.seed=S` runs it, so each number can be reproduced with the CLI:

- grown: `<task>_split.grow` (the fast solver; on the RBF toy also `rbf_exact.grow`), starting at
  the ranges' low ends and splitting on its `grow` schedule;
- (a) the grown run's `final.grow` (same architecture, data, training and seed, no growth) trained
  from scratch for the same total epochs;
- (b) `<task>_random.grow`: random splitting, `split(method: random)` with the same options;
- (c) `<task>_wide.grow`: the ranges' high ends, trained from scratch for the same epochs.

Reports test accuracy (test MSE on the regression toy) and params, mean ± std over seeds, as a
Markdown table on stdout; progress goes to stderr.

    python benchmarks/split_quality.py [--tasks digits spirals rbf] [--seeds 0 1 2] [--out DIR]
        [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from growdsl import api

SPECS = Path(__file__).parent / "specs"


@dataclass(frozen=True)
class Task:
    """A task's spec files (grown arms by label, then the baselines) and the metric it reports."""

    grown: dict[str, str]
    random: str
    wide: str
    metric: str  # a key of `Run.final_metrics`


TASKS = {
    "digits": Task(
        {"split (fast)": "digits_split.grow"}, "digits_random.grow", "digits_wide.grow", "test_acc"
    ),
    "spirals": Task(
        {"split (fast)": "spirals_split.grow"}, "spirals_random.grow", "spirals_wide.grow", "test_acc"
    ),
    "rbf": Task(
        {"split (fast)": "rbf_fast.grow", "split (exact)": "rbf_exact.grow"},
        "rbf_random.grow",
        "rbf_wide.grow",
        "test_loss",
    ),
}


def _run(spec_path: Path, overrides: list[str], out: Path, metric: str) -> tuple[float, int, Path]:
    """One `growdsl run`: (the metric, the final params, the run directory)."""
    start = time.perf_counter()
    result = api.run_spec(api.load(spec_path, overrides), out, quiet=True, force=True)
    value, params = result.final_metrics[metric], result.final_metrics["params"]
    grows = sum(r["event"] == "grow" for r in result.history)
    print(
        f"  {out.name}: {metric} {value:.4f}, {params} params, {grows} grow lines "
        f"({time.perf_counter() - start:.1f} s)",
        file=sys.stderr,
        flush=True,
    )
    return value, params, result.dir


def run_task(name: str, seeds: list[int], extra: list[str], root: Path) -> dict[str, list[tuple[float, int]]]:
    """Every arm of one task for every seed: {arm: [(metric, params) per seed]}."""
    task = TASKS[name]
    results: dict[str, list[tuple[float, int]]] = {}
    for seed in seeds:
        print(f"{name}, seed {seed}", file=sys.stderr, flush=True)
        overrides = [f"train.seed={seed}", *extra]
        for label, spec in task.grown.items():
            value, params, run_dir = _run(
                SPECS / spec, overrides, root / f"{name}-{label}-{seed}", task.metric
            )
            results.setdefault(f"grown: {label}", []).append((value, params))
            scratch = _run(run_dir / "final.grow", [], root / f"{name}-{label}-scratch-{seed}", task.metric)
            results.setdefault(f"(a) final arch of {label}, from scratch", []).append(scratch[:2])
        for label, spec in (("(b) random splitting", task.random), ("(c) ranges' high ends", task.wide)):
            tag = label.split()[0].strip("()")
            results.setdefault(label, []).append(
                _run(SPECS / spec, overrides, root / f"{name}-{tag}-{seed}", task.metric)[:2]
            )
    return results


def _mean_std(values: list[float], digits: int) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def table(name: str, results: dict[str, list[tuple[float, int]]]) -> str:
    """Markdown rows: one per arm, the metric and the params as mean ± std over seeds."""
    metric = "test MSE" if TASKS[name].metric == "test_loss" else "test accuracy"
    lines = [f"| task | arm | {metric} | params |", "| --- | --- | --- | --- |"]
    for arm, rows in results.items():
        values, params = [v for v, _ in rows], [float(p) for _, p in rows]
        lines.append(f"| {name} | {arm} | {_mean_std(values, 4)} | {_mean_std(params, 0)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, help="keep the run directories here (default: a temp dir)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        for name in args.tasks:
            print(table(name, run_task(name, args.seeds, args.overrides, root)) + "\n", flush=True)
    print(f"seeds {args.seeds}; {time.perf_counter() - start:.0f} s in all", file=sys.stderr)


if __name__ == "__main__":
    main()
