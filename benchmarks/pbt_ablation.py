"""Does PBT-NAS's mixing with shrink-perturb beat its ablations and baselines? (issue #10)

The paper's ablation at small scale, equal compute: every arm trains P networks (16 by default:
at 8 the parent pool is the top 2 and mixing can hardly matter) for the same epochs each (a
population of P with an exploit step every `--every` epochs, 11 exploit steps at 12 epochs and
every 1, or P random trials), on a space where the architecture matters
(`benchmarks/specs/pbt_spirals.grow` by default), through `growdsl.api` exactly as
`growdsl run SPEC --set train.seed=S --set search=...` runs it:

- default: `pbt(mix: 0.25, shrink: 0.4, perturb: 0.1)`;
- no mixing: `mix: 0` (plain PBT exploit: the child is a copy of a top member);
- copy `[1, 0]`: the donor's layers copied exactly (`shrink: 1, perturb: 0`);
- re-initialise `[0, 1]`: the donor's layers freshly initialised (`shrink: 0, perturb: 1`);
- no new architecture: `donor: self` (the authors' `mix_with_itself`: the drawn layers
  shrink-perturbed from the child's own);
- mutation PBT: `mode: mutate`; the authors' SEARL-like baseline: `mode: searl`;
- random search: `random(trials: P)`.

Reports the best member's validation accuracy (what the search maximises) and its test accuracy,
mean ± std over seeds, and how often the winner carries borrowed layers (its history holds a `mix`
line from a second parent), as a Markdown table on stdout; progress on stderr.

    python benchmarks/pbt_ablation.py [--spec benchmarks/specs/pbt_spirals.grow] [--seeds 0 1 2 3 4]
        [--population 16] [--every 1]
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


def arms(population: int, every: int) -> dict[str, str]:
    common = f"population: {population}, every: {every}, replace: 0.25, workers: 1"
    return {
        "default (mix 0.25, 0.4 / 0.1)": f"pbt({common}, mix: 0.25, shrink: 0.4, perturb: 0.1)",
        "no new architecture (donor self)": f"pbt({common}, mix: 0.25, donor: self)",
        "no mixing (mix 0)": f"pbt({common}, mix: 0)",
        "copy [1, 0]": f"pbt({common}, mix: 0.25, shrink: 1, perturb: 0)",
        "re-initialise [0, 1]": f"pbt({common}, mix: 0.25, shrink: 0, perturb: 1)",
        "mutation PBT": f"pbt({common}, mode: mutate)",
        "SEARL-like (mode searl)": f"pbt({common}, mode: searl)",
        f"random search ({population} trials)": f"random(trials: {population}, workers: 1)",
    }


def _best(run_dir: Path) -> dict:
    lines = [json.loads(x) for x in (run_dir / "search.jsonl").read_text().splitlines()]
    return lines[-1]


def _borrowed(run_dir: Path) -> bool:
    """Whether the winner's history holds a layer taken from a second parent."""
    history = [json.loads(x) for x in (run_dir / "history.jsonl").read_text().splitlines()]
    return any(line["event"] == "mix" and len(line["parents"]) == 2 for line in history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=SPECS / "pbt_spirals.grow")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--every", type=int, default=1)
    args = parser.parse_args()
    searches = arms(args.population, args.every)
    results: dict[str, list[tuple[float, float, bool]]] = {arm: [] for arm in searches}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for arm, search in searches.items():
                start = time.perf_counter()
                spec = api.load(args.spec, [f"train.seed={seed}", f"search={search}"])
                run = api.run_spec(spec, Path(tmp) / f"{seed}-{len(results[arm])}-{arm[:4]}", quiet=True)
                best = _best(run.dir)
                results[arm].append((best["fitness"], best["test_acc"], _borrowed(run.dir)))
                print(
                    f"seed {seed} {arm}: val {best['fitness']:.4f} test {best['test_acc']:.4f} "
                    f"({time.perf_counter() - start:.0f} s)",
                    file=sys.stderr,
                )
    print(f"`{args.spec.name}`, seeds {args.seeds}: best member, mean ± std over seeds\n")
    print("| arm | val acc (searched) | test acc | winner carries borrowed layers |")
    print("| --- | --- | --- | --- |")
    for arm, values in results.items():
        val = [v for v, _, _ in values]
        test = [t for _, t, _ in values]
        borrowed = sum(b for _, _, b in values)
        print(f"| {arm} | {_mean_std(val)} | {_mean_std(test)} | {borrowed} of {len(values)} |")


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


if __name__ == "__main__":
    main()
