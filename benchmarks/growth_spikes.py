"""What removes the loss spike after a growth step, and does it change the final accuracy (issue
#20, item 2)? Paired by seed on the untuned task of `payoff_untuned.py` (never used to choose a
growth option), growing every 5 epochs of 40 with a fresh optimizer and a restarted schedule (the
defaults), the arms differ only in how a step's change enters:

- fast splitting (ε = 0.1: a second-order change of the function), with and without a linear
  learning-rate warm-up over the 32 batches (one epoch) after each step (`after_growth(warmup:
  32)`), and with the optimizer's state carried instead of a fresh one (no fresh Adam moments);
- random new neurons entering at full scale (outgoing weights drawn as a new layer's, `eps: 1`: a
  first-order change), with and without the warm-up, and entering at zero outgoing weights
  (`eps: 1e-6`: the function kept to 1e-6, the identity entry).

Printed per arm: test accuracy (mean ± sd), final params, the spike (training loss of the epoch
after each step over the step's epoch: mean over steps and the largest), the same ratio of the
held-out loss, the grow lines' function change `delta_out`, and each arm minus its
reference arm, paired, with its 95 % interval and t (growdsl/payoff/stats.py). Each finished run is
appended to `--jsonl` as it ends, so a cut-short run keeps what it did.

    python benchmarks/growth_spikes.py [--seeds 10] [--workers 2] [--jsonl FILE] [--arms NAME ...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import suite_tasks as st
from growth_suite import Job, _worker_init, run_job
from payoff_untuned import MODEL, write_task

from growdsl import strict_json
from growdsl.payoff.stats import paired, summarize

TRAIN = "epochs 40 batch 64 optimizer adam(lr: 3e-3) seed {s}"
SPLIT = "split(frac: 0.5, eps: 0.1, method: fast)"
RANDOM = "randomgrow(candidates: 0, deeper: 0, steps: 0, frac: 0.5, eps: {eps})"
WHEN = "every 5 epochs until params > 6000"
WARMUP = "after_growth(warmup: 32)"
ARMS = {  # name: (grow block's statements, the arm it is paired with)
    "split": (f"{WHEN} {SPLIT}", None),
    "split, warm-up 32": (f"{WHEN} {WARMUP} {SPLIT}", "split"),
    "split, optimizer carried": (f"{WHEN} after_growth(optimizer: carry) {SPLIT}", "split"),
    "random, eps 1": (f"{WHEN} {RANDOM.format(eps=1)}", None),
    "random, eps 1, warm-up 32": (f"{WHEN} {WARMUP} {RANDOM.format(eps=1)}", "random, eps 1"),
    "random, eps 1e-6 (identity)": (f"{WHEN} {RANDOM.format(eps=1e-6)}", "random, eps 1"),
}


def jobs(csv: Path, seeds: int, names: list[str]) -> list[Job]:
    data = f'csv(path: "{csv}", target: "label", test: 0.2)'
    return [
        Job((name, s), s, st.spec_text(data, MODEL, TRAIN.format(s=s), ARMS[name][0]))
        for s in range(seeds)
        for name in names
    ]


def step_effects(res: dict) -> tuple[list[float], list[float], list[float]]:
    """Per growth step: the training loss of the epoch after it over the step's epoch's, the
    held-out loss's ratio over that epoch, and the step's largest `delta_out`."""
    loss = {r["epoch"]: r["loss"] for r in res["epochs"]}
    held = {r["epoch"]: r["held_out_loss"] for r in res["epochs"]}
    steps = sorted({g["epoch"] for g in res["grows"]})
    ratios = [loss[g + 1] / loss[g] for g in steps if g + 1 in loss]
    held_ratios = [held[g + 1] / held[g] for g in steps if g + 1 in held]
    deltas = [max(x["delta_out"] or 0.0 for x in res["grows"] if x["epoch"] == g) for g in steps]
    return ratios, held_ratios, deltas


def table(results: dict[tuple, dict], seeds: list[int], names: list[str]) -> str:
    acc = {a: [results[(a, s)]["final"]["test_acc"] for s in seeds] for a in names}
    lines = [
        "| arm | test acc (mean ± sd) | params | spike: mean, max | held-out loss spike: mean, max "
        "| delta_out: mean | minus its reference: mean [95 % interval], t |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for arm in names:
        runs = [results[(arm, s)] for s in seeds]
        a = summarize(acc[arm])
        params = summarize([r["final"]["params"] for r in runs]).mean
        effects = [step_effects(r) for r in runs]
        ratios = [x for e in effects for x in e[0]]
        held = [x for e in effects for x in e[1]]
        deltas = [x for e in effects for x in e[2]]
        spike = f"{sum(ratios) / len(ratios):.3f}, {max(ratios):.3f}" if ratios else "-"
        held_spike = f"{sum(held) / len(held):.3f}, {max(held):.3f}" if held else "-"
        delta = f"{sum(deltas) / len(deltas):.3g}" if deltas else "-"
        reference = ARMS[arm][1]
        diff = "-"
        if reference in names:
            p = paired(acc[arm], acc[reference])
            if p.t is not None:
                diff = f"{p.mean:+.4f} [{p.low:+.4f}, {p.high:+.4f}], {p.t:+.2f} (vs {reference})"
        sd = "" if a.sd is None else f" ± {a.sd:.4f}"
        lines.append(
            f"| {arm} | {a.mean:.4f}{sd} | {params:.0f} | {spike} | {held_spike} | {delta} | {diff} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--arms", nargs="+", choices=sorted(ARMS), default=list(ARMS))
    parser.add_argument("--jsonl", type=Path, help="append each finished run here (strict JSON lines)")
    parser.add_argument("--table", type=Path, help="only print the table of the runs in this JSON-lines file")
    args = parser.parse_args()
    start = time.perf_counter()
    results: dict[tuple, dict] = {}
    if args.table:
        for line in args.table.read_text().splitlines():
            res = strict_json.loads(line)
            results[tuple(res["key"])] = res
        args.arms = [a for a in args.arms if any(k[0] == a for k in results)]
    else:
        results = run(args)
    seeds = [s for s in range(args.seeds) if all((a, s) in results for a in args.arms)]
    print(f"## Growth spikes: the untuned task, {MODEL}, {TRAIN.format(s='s')}; seeds {seeds}\n")
    print(table(results, seeds, args.arms))
    print(
        f"\n{len(results)} runs, {args.workers} workers, {time.perf_counter() - start:.0f} s", file=sys.stderr
    )


def run(args: argparse.Namespace) -> dict[tuple, dict]:
    """Every arm and seed in a pool, each run appended to `args.jsonl` as it ends."""
    start = time.perf_counter()
    results: dict[tuple, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        todo = jobs(write_task(Path(tmp)), args.seeds, args.arms)
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.workers, initializer=_worker_init) as pool:
            for i, res in enumerate(pool.imap_unordered(run_job, todo, chunksize=1), 1):
                results[res["key"]] = res
                print(f"  [{i}/{len(todo)} {time.perf_counter() - start:.0f} s] {res['key']}: "
                      f"acc {res['final']['test_acc']:.4f}", file=sys.stderr, flush=True)  # fmt: skip
                if args.jsonl:
                    with args.jsonl.open("a") as out:
                        out.write(strict_json.dumps({**res, "key": list(res["key"])}) + "\n")
    return results


if __name__ == "__main__":
    main()
