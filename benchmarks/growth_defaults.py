"""Which growth defaults (issue #20, item 2)? Paired by seed: when to grow (a fixed period of 5
epochs, which is now the default's ceil(30 / 6), an unsmoothed plateau, the smoothed relative
plateau that was the default before) and what follows a step (a fresh optimizer and a restarted
schedule, the default, or the optimizer carried over), with the same transform and budget; plus
the smoothed plateau arm's final net from scratch and the start net.

Each arm is a whole `growdsl run` through the growth suite's pool (benchmarks/growth_suite.py:
2 processes, one torch thread each). Printed per arm: test accuracy (mean ± sd), growth steps,
final params, the loss spike after a step (training loss of the epoch after a step over the
epoch's before it, the mean over steps, and the largest), and each arm minus the default arm,
paired, with its 95 % interval and t (growdsl/payoff/stats.py).

    python benchmarks/growth_defaults.py [--seeds 10] [--workers 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import suite_tasks as st
from growth_suite import Job, run_all

from growdsl import strict_json
from growdsl.payoff.stats import paired, summarize

DATA = "spirals(n: 1000, noise: 0.2, turns: 1.5)"
MODEL = "linear(4..32) as h1 tanh linear(4..32) as h2 tanh linear(classes)"
TRAIN = "epochs 30 batch 64 optimizer adam(lr: 1e-2) seed {s}"
GROW = "until params > 1200 split(frac: 0.5, eps: 0.1, method: fast)"
CARRY = "after_growth(optimizer: carry, schedule: continue)"
PLATEAU = "when plateau(patience: 3, rel: 0.01, smooth: 3)"
DEFAULT = "smoothed plateau, fresh"  # the default before; the arm the others are paired with
ARMS = {
    "every 5, carry": f"every 5 epochs {CARRY}",
    "every 5 (the default: ceil(30 / 6)), fresh": "",
    "unsmoothed plateau(patience: 3), fresh": "when plateau(patience: 3)",
    DEFAULT: PLATEAU,
    "smoothed plateau, carry": f"{PLATEAU} {CARRY}",
}


def jobs(seeds: int) -> list[Job]:
    out = []
    for s in range(seeds):
        train = TRAIN.format(s=s)
        for arm, when in ARMS.items():
            out.append(Job((arm, s), s, st.spec_text(DATA, MODEL, train, f"{when} {GROW}")))
        out.append(Job(("start", s), s, st.spec_text(DATA, MODEL, train)))
    return out


def spikes(res: dict) -> list[float]:
    """Training loss of the epoch after each growth step over the loss of the step's epoch."""
    loss = {r["epoch"]: r["loss"] for r in res["epochs"]}
    steps = sorted({g["epoch"] for g in res["grows"]})
    return [loss[g + 1] / loss[g] for g in steps if g + 1 in loss]


def table(results: dict[tuple, dict], seeds: int) -> str:
    arms = [*ARMS, "final net from scratch", "start"]
    acc = {a: [results[(a, s)]["final"]["test_acc"] for s in range(seeds)] for a in arms}
    lines = [
        "| arm | test acc (mean ± sd) | growth steps | params | spike: mean, max | "
        "minus the smoothed plateau: mean [95 % interval], t |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for arm in arms:
        runs = [results[(arm, s)] for s in range(seeds)]
        a = summarize(acc[arm])
        steps = summarize([len({g["epoch"] for g in r["grows"]}) for r in runs]).mean
        params = summarize([r["final"]["params"] for r in runs]).mean
        ratios = [x for r in runs for x in spikes(r)]
        spike = f"{sum(ratios) / len(ratios):.3f}, {max(ratios):.3f}" if ratios else "-"
        p = paired(acc[arm], acc[DEFAULT])
        diff = "-"
        if arm != DEFAULT and p.t is not None:
            diff = f"{p.mean:+.4f} [{p.low:+.4f}, {p.high:+.4f}], {p.t:+.2f}"
        lines.append(f"| {arm} | {a.mean:.4f} ± {a.sd:.4f} | {steps:.1f} | {params:.0f} | {spike} | {diff} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write every run's records here (strict JSON)")
    args = parser.parse_args()
    start = time.perf_counter()
    results = run_all(jobs(args.seeds), args.workers)
    scratch = [
        Job(("final net from scratch", s), s, results[(DEFAULT, s)]["final_grow"]) for s in range(args.seeds)
    ]
    results |= run_all(scratch, args.workers)
    if args.json:
        rows = [{"key": list(k), **{x: y for x, y in v.items() if x != "key"}} for k, v in results.items()]
        args.json.write_text(strict_json.dumps(rows))
    print(f"## Growth defaults: {DATA}, {MODEL}, {TRAIN.format(s='s')}, {GROW}; {args.seeds} seeds\n")
    print(table(results, args.seeds))
    seconds = time.perf_counter() - start
    print(f"\n{len(results)} runs, {args.workers} workers, {seconds:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
