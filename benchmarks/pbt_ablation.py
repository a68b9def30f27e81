"""Does PBT-NAS's mixing with shrink-perturb beat its ablations and baselines? (issue #10)

The paper's ablation at small scale, equal compute: every arm trains 8 networks for the same
epochs each (a population of 8, or 8 random trials), on a space where the architecture matters
(`benchmarks/specs/pbt_spirals.grow` by default), through `growdsl.api` exactly as
`growdsl run SPEC --set train.seed=S --set search=...` runs it:

- default: `pbt(mix: 0.25, shrink: 0.4, perturb: 0.1)`;
- no mixing: `mix: 0` (plain PBT exploit: the child is a copy of a top member);
- copy `[1, 0]`: the donor's layers copied exactly (`shrink: 1, perturb: 0`);
- re-initialise `[0, 1]`: the donor's layers freshly initialised (`shrink: 0, perturb: 1`);
- mutation PBT: `mode: mutate`;
- random search: `random(trials: 8)`.

Reports the best member's validation accuracy (what the search maximises) and its test accuracy,
mean ± std over seeds, as a Markdown table on stdout; progress on stderr.

    python benchmarks/pbt_ablation.py [--spec benchmarks/specs/pbt_spirals.grow] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from growdsl import api

SPECS = Path(__file__).parent / "specs"
COMMON = "population: 8, every: 2, replace: 0.25, workers: 1"
ARMS = {
    "default (mix 0.25, 0.4 / 0.1)": f"pbt({COMMON}, mix: 0.25, shrink: 0.4, perturb: 0.1)",
    "no mixing (mix 0)": f"pbt({COMMON}, mix: 0)",
    "copy [1, 0]": f"pbt({COMMON}, mix: 0.25, shrink: 1, perturb: 0)",
    "re-initialise [0, 1]": f"pbt({COMMON}, mix: 0.25, shrink: 0, perturb: 1)",
    "mutation PBT": f"pbt({COMMON}, mode: mutate)",
    "random search (8 trials)": "random(trials: 8, workers: 1)",
}


def _best(run_dir: Path) -> dict:
    lines = [json.loads(x) for x in (run_dir / "search.jsonl").read_text().splitlines()]
    return lines[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=SPECS / "pbt_spirals.grow")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for arm, search in ARMS.items():
                start = time.perf_counter()
                spec = api.load(args.spec, [f"train.seed={seed}", f"search={search}"])
                run = api.run_spec(spec, Path(tmp) / f"{seed}-{len(results[arm])}-{arm[:4]}", quiet=True)
                best = _best(run.dir)
                results[arm].append((best["fitness"], best["test_acc"]))
                print(
                    f"seed {seed} {arm}: val {best['fitness']:.4f} test {best['test_acc']:.4f} "
                    f"({time.perf_counter() - start:.0f} s)",
                    file=sys.stderr,
                )
    print(f"`{args.spec.name}`, seeds {args.seeds}: best member, mean ± std over seeds\n")
    print("| arm | val acc (searched) | test acc |")
    print("| --- | --- | --- |")
    for arm, values in results.items():
        val = [v for v, _ in values]
        test = [t for _, t in values]
        print(f"| {arm} | {_mean_std(val)} | {_mean_std(test)} |")


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


if __name__ == "__main__":
    main()
