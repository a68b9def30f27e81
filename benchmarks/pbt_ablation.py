"""Does PBT-NAS's mixing with shrink-perturb beat its ablations and baselines? (issues #10, #21)

The paper's ablation at small scale, equal compute: every arm trains P networks (16 by default:
at 8 the parent pool is the top 2 and mixing can hardly matter) for the same epochs each (a
population of P with an exploit step every `--every` epochs, 11 exploit steps at 12 epochs and
every 1, or P random trials), on a space where the architecture matters
(`benchmarks/specs/pbt_spirals.grow` by default), through `growdsl.api` exactly as
`growdsl run SPEC --set train.seed=S --set search=...` runs it. The arms (`--arms`, by key):

- `default`: PBT-NAS, `pbt(mix: 0.25, shrink: 0.4, perturb: 0.1)`;
- `self`: no new architecture, `donor: self` (the authors' `mix_with_itself`: the drawn layers
  shrink-perturbed from the child's own);
- `searl`: the authors' SEARL-like baseline, `mode: searl`;
- `copy`: shrink-perturb off, the donor's layers copied exactly (`shrink: 1, perturb: 0`);
- `reinit`: the donor's layers freshly initialised (`shrink: 0, perturb: 1`);
- `nomix`: `mix: 0` (plain PBT exploit: the child is a copy of a top member);
- `mutate`: growdsl's mutation PBT, `mode: mutate`;
- `random`: `random(trials: P)`.

Every PBT arm of a seed starts from the same stratified population (docs/methods/pbt_nas.md).
Each finished (seed, arm) is appended to `--out` (JSON lines) as it ends, and a rerun of the same
command skips the pairs already there, so a kill loses one run at most. The report (stdout,
Markdown) gives per arm the winner's validation accuracy (what the search maximises) and test
accuracy, mean ± sd over seeds, how often the winner is a child of the exploit step and how often
it carries layers borrowed from a second parent (a `mix` line with two parents in its history,
its own or an ancestor's); then each arm's paired difference from `default` in validation and
test accuracy over the seeds both ran: mean, 95% interval (Student's t), t. Progress goes to
stderr.

    python benchmarks/pbt_ablation.py [--spec benchmarks/specs/pbt_spirals.grow] [--seeds 0 1 2 3 4]
        [--population 16] [--every 1] [--workers 2] [--arms default self searl copy]
        [--out runs/pbt_ablation.jsonl]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

from growdsl import api
from growdsl.payoff.stats import t975

SPECS = Path(__file__).parent / "specs"
LABELS = {
    "default": "PBT-NAS (mix 0.25, shrink 0.4, perturb 0.1)",
    "self": "no new architecture (`donor: self`)",
    "searl": "SEARL-like (`mode: searl`)",
    "copy": "shrink-perturb off: copy `[1, 0]`",
    "reinit": "re-initialise `[0, 1]`",
    "nomix": "no mixing (`mix: 0`)",
    "mutate": "mutation PBT (`mode: mutate`)",
    "random": "random search",
}


def searches(population: int, every: int, workers: int) -> dict[str, str]:
    common = f"population: {population}, every: {every}, replace: 0.25, workers: {workers}"
    return {
        "default": f"pbt({common}, mix: 0.25, shrink: 0.4, perturb: 0.1)",
        "self": f"pbt({common}, mix: 0.25, donor: self)",
        "searl": f"pbt({common}, mode: searl)",
        "copy": f"pbt({common}, mix: 0.25, shrink: 1, perturb: 0)",
        "reinit": f"pbt({common}, mix: 0.25, shrink: 0, perturb: 1)",
        "nomix": f"pbt({common}, mix: 0)",
        "mutate": f"pbt({common}, mode: mutate)",
        "random": f"random(trials: {population}, workers: {workers})",
    }


def one_run(spec_path: Path, seed: int, search: str, out: Path, population: int) -> dict:
    """One search; its winner's validation and test accuracy, whether it is a child and whether
    it carries borrowed layers."""
    spec = api.load(spec_path, [f"train.seed={seed}", f"search={search}"])
    run = api.run_spec(spec, out, quiet=True)
    lines = [json.loads(x) for x in (run.dir / "search.jsonl").read_text().splitlines()]
    best = lines[-1]
    history = [json.loads(x) for x in (run.dir / "history.jsonl").read_text().splitlines()]
    borrowed = any(line["event"] == "mix" and len(line["parents"]) == 2 for line in history)
    return {"val": best["fitness"], "test": best["test_acc"], "child": best["member"] >= population,
            "borrowed": borrowed}  # fmt: skip


def read_results(path: Path, config: str) -> dict[tuple[int, str], dict]:
    """The runs `path` holds of the settings `config` (a file may hold other settings' too)."""
    if not path.exists():
        return {}
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return {(line["seed"], line["arm"]): line for line in lines if line["config"] == config}


def report(results: dict[tuple[int, str], dict], arms: list[str], header: str) -> str:
    out = [header, "", "| arm | seeds | val acc (searched) | test acc | winner a child | winner borrowed |",
           "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for arm in arms:
        rows = [r for (_, a), r in sorted(results.items()) if a == arm]
        if not rows:
            continue
        child, borrowed = sum(r["child"] for r in rows), sum(r["borrowed"] for r in rows)
        out.append(
            f"| {LABELS[arm]} | {len(rows)} | {_mean_sd([r['val'] for r in rows])} | "
            f"{_mean_sd([r['test'] for r in rows])} | {child} of {len(rows)} | {borrowed} of {len(rows)} |"
        )
    out += ["", "Paired difference, PBT-NAS − arm, over the seeds both ran (mean, 95% interval, t):",
            "", "| arm | seeds | val acc (searched) | test acc |", "| --- | --- | --- | --- |"]  # fmt: skip
    for arm in arms:
        seeds = sorted(s for (s, a) in results if a == arm and (s, "default") in results)
        if arm != "default" and len(seeds) >= 2:
            cells = [
                _paired([results[s, "default"][k] - results[s, arm][k] for s in seeds])
                for k in ("val", "test")
            ]
            out.append(f"| {LABELS[arm]} | {len(seeds)} | {cells[0]} | {cells[1]} |")
    return "\n".join(out)


def _paired(diffs: list[float]) -> str:
    mean, se = statistics.mean(diffs), statistics.stdev(diffs) / math.sqrt(len(diffs))
    half = t975(len(diffs) - 1) * se
    t = f"{mean / se:+.2f}" if se > 0 else "n/a"
    return f"{mean:+.4f} [{mean - half:+.4f}, {mean + half:+.4f}], t {t}"


def _mean_sd(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=SPECS / "pbt_spirals.grow")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--every", type=int, default=1)
    # members trained at once, each on cores // workers torch threads: 2 on 2 cores trains each on
    # one thread, which a loaded machine runs many times faster than one member on two threads
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--arms", nargs="+", choices=list(LABELS), default=[*list(LABELS)[:4]])
    parser.add_argument("--out", type=Path, default=Path("runs/pbt_ablation.jsonl"))
    args = parser.parse_args()
    arms = ["default", *[a for a in args.arms if a != "default"]]  # the reference of the differences
    by_arm = searches(args.population, args.every, args.workers)
    config = f"{args.spec.name} population {args.population} every {args.every} workers {args.workers}"
    results = read_results(args.out, config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:  # seed by seed: a kill leaves whole seeds of every arm
            for arm in arms:
                if (seed, arm) in results:
                    continue
                start = time.perf_counter()
                row = one_run(args.spec, seed, by_arm[arm], Path(tmp) / f"{seed}-{arm}", args.population)
                seconds = round(time.perf_counter() - start, 1)
                row = {"config": config, "seed": seed, "arm": arm, **row, "seconds": seconds}
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                results[seed, arm] = row
                print(f"seed {seed} {arm}: val {row['val']:.4f} test {row['test']:.4f} "
                      f"borrowed {row['borrowed']} ({row['seconds']:.0f} s)", file=sys.stderr)  # fmt: skip
    header = (f"`{args.spec.name}`, population {args.population}, every {args.every}, seeds {args.seeds}: "
              "the winner, mean ± sd over seeds")  # fmt: skip
    print(report({k: v for k, v in results.items() if k[0] in args.seeds}, arms, header))


if __name__ == "__main__":
    main()
