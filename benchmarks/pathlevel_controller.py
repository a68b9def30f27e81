"""Does the path-level meta-controller find better cells than random decisions? (issues #9, #21)

The paper's claim (Cai et al. 2018) is that the learned tree-LSTM controller finds better cells
than random sampling. At small scale, equal compute: for each seed, the same spec (a digits MLP
with a shared cell, base net trained `--base-epochs`) is searched twice through `growdsl.api`,
exactly as `growdsl run` runs it, with `controller: treelstm` and with `controller: random`: the
same base net (same seed), the same number of children (episodes x batch), each trained the same
epochs. The two arms of a seed draw their decisions from the same seeded generator, so they are
paired.

Each finished search is appended at once to `--results` (one JSON line: its settings, seed, arm,
every child's episode, validation accuracy and params, the base net's and the best child's
scores, its wall time), so a run that is stopped keeps what it finished, and a second run of the
same command skips the searches already in the file. The report (Markdown on stdout; `--report`
prints it from the file alone) gives, per arm, mean ± sd over seeds of the base net's validation
accuracy, the best child's, the mean of the top 5, the mean of every child, the mean of the second
half of the episodes' children (when a learned policy should have moved) and the best child's
test accuracy; then the paired difference treelstm - random over seeds (mean, 95% t interval, t)
of the second half's mean (the comparison that can tell) and of the best child's accuracy, and a
Welch interval over the pooled second-half children (each child one sample; children of one seed
share a base net, so it is narrower than the truth). Deterministic on the CPU (seeded; the
controller in one torch thread, the base net and the children with the search's threads per
member, i.e. the machine's cores): a rerun on a machine with as many cores gives the same table.
On a loaded machine run it with `OMP_WAIT_POLICY=PASSIVE`: OpenMP threads that spin while they
wait made a small 2-thread training loop 45 times slower at load 20 on 2 cores (90 s against
2 s); threads that sleep change no result.

    python benchmarks/pathlevel_controller.py --seeds 0 1 2 --episodes 10 --batch 4 --epochs 1 \
        --base-epochs 4 --results pathlevel_controller.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from growdsl import api, lang
from growdsl.payoff.stats import t975

SPEC = """\
data digits(test: 0.2, val: 0.2)

block cell(c) {
    linear(c)
    bn
    relu
    branch add {
        linear(c) bn
      | identity
    }
}

model mlpcell {
    flatten
    linear(24)
    relu
    cell(24) as cell1
    cell(24) as cell2
    linear(classes)
}

train {
    epochs 4
    batch 64
    optimizer adam(lr: 3e-3)
    seed 0
}

search pathlevel(episodes: 1)
"""
ARMS = ("treelstm", "random")
SETTINGS = ("episodes", "batch", "epochs", "base_epochs")


def search(seed: int, arm: str, settings: dict[str, int], out: Path) -> dict:
    """One search, run as `growdsl run` runs it; its record (see the module docstring)."""
    options = (
        f"pathlevel(controller: {arm}, episodes: {settings['episodes']}, batch: {settings['batch']}, "
        f"epochs: {settings['epochs']}, workers: 1)"
    )
    spec = lang.apply_overrides(
        lang.parse_text(SPEC, "pathlevel_controller.grow"),
        [f"train.seed={seed}", f"train.epochs={settings['base_epochs']}", f"search={options}"],
    )
    start = time.perf_counter()
    api.run_spec(spec, out, quiet=True)
    lines = [json.loads(x) for x in (out / "search.jsonl").read_text().splitlines()]
    children = [line for line in lines if line["event"] == "evaluate"]
    base = next(line for line in lines if line["event"] == "base")
    best = lines[-1]
    return {
        **settings,
        "seed": seed,
        "arm": arm,
        "children": [[c["episode"], c["member"], c["fitness"], c["params"]] for c in children],
        "base val": base["fitness"],
        "best member": best["member"],
        "best test": best["test_acc"],
        "seconds": round(time.perf_counter() - start, 1),
    }


def measures(record: dict) -> dict[str, float]:
    """The per-search figures the report compares."""
    fitness = sorted((c[2] for c in record["children"]), reverse=True)
    episodes = record["episodes"]
    second = [c[2] for c in record["children"] if c[0] > episodes // 2]
    return {
        "base val": record["base val"],
        "best val": fitness[0],
        "top-5 val": statistics.mean(fitness[:5]),
        "mean val": statistics.mean(fitness),
        "second-half val": statistics.mean(second),
        "best test": record["best test"],
    }


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


def paired(diffs: list[float]) -> str:
    """Mean of the per-seed differences, its 95% t interval and t."""
    mean = statistics.mean(diffs)
    if len(diffs) < 2:
        return f"{mean:+.4f} (one seed: no interval)"
    se = statistics.stdev(diffs) / len(diffs) ** 0.5
    half = t975(len(diffs) - 1) * se
    t = f"{mean / se:.2f}" if se > 0 else "undefined (every seed the same difference)"
    return f"{mean:+.4f} [{mean - half:+.4f}, {mean + half:+.4f}], t = {t} (df {len(diffs) - 1})"


def welch(a: list[float], b: list[float]) -> str:
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    mean, se = statistics.mean(a) - statistics.mean(b), (va + vb) ** 0.5
    half = t975(df) * se
    return (
        f"{mean:+.4f} [{mean - half:+.4f}, {mean + half:+.4f}], t = {mean / se:.2f} "
        f"({len(a)} vs {len(b)} children, Welch df {df:.0f})"
    )


def report(records: list[dict], settings: dict[str, int]) -> str:
    """The Markdown report of the searches in `records` run with `settings` (seeds with both arms)."""
    mine = [r for r in records if all(r[k] == v for k, v in settings.items())]
    by = {(r["seed"], r["arm"]): r for r in mine}
    seeds = sorted({s for s, _ in by if all((s, arm) in by for arm in ARMS)})
    if not seeds:
        return "no seed has both arms finished yet"
    rows = {arm: [measures(by[s, arm]) for s in seeds] for arm in ARMS}
    columns = list(rows[ARMS[0]][0])
    children = len(by[seeds[0], ARMS[0]]["children"])
    out = [
        f"{settings['episodes']} episodes x {settings['batch']} children ({children} per arm and seed), "
        f"{settings['epochs']} epoch(s) each, base {settings['base_epochs']} epochs, seeds {seeds}; "
        "validation accuracy, mean ± sd over seeds\n",
        "| controller | " + " | ".join(columns) + " | minutes |",
        "| --- |" + " --- |" * (len(columns) + 1),
    ]
    for arm in ARMS:
        minutes = statistics.mean(by[s, arm]["seconds"] for s in seeds) / 60
        cells = [_mean_sd([r[c] for r in rows[arm]]) for c in columns]
        out.append(f"| {arm} | " + " | ".join(cells) + f" | {minutes:.1f} |")
    out.append("\nper seed, second-half mean val (treelstm / random): " + "; ".join(
        f"seed {s}: {a['second-half val']:.4f} / {b['second-half val']:.4f}"
        for s, a, b in zip(seeds, *rows.values(), strict=True)
    ))  # fmt: skip
    out.append("\ntreelstm - random (95% intervals):\n")
    for column in ("second-half val", "best val"):
        diffs = [a[column] - b[column] for a, b in zip(*rows.values(), strict=True)]
        out.append(f"- {column}, paired over {len(seeds)} seeds: {paired(diffs)}")
    pooled = {
        arm: [c[2] for s in seeds for c in by[s, arm]["children"] if c[0] > settings["episodes"] // 2]
        for arm in ARMS
    }
    out.append(f"- second-half children pooled: {welch(pooled['treelstm'], pooled['random'])}")
    return "\n".join(out)


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []


def _append(path: Path, record: dict) -> None:
    """One line, flushed to disk before the next search starts."""
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--base-epochs", type=int, default=4)
    parser.add_argument("--results", type=Path, default=Path("pathlevel_controller.jsonl"))
    parser.add_argument("--report", action="store_true", help="print the report of --results and exit")
    args = parser.parse_args()
    settings = {k: getattr(args, k) for k in SETTINGS}
    if not args.report:
        torch.set_num_threads(1)
        done = {
            (r["seed"], r["arm"]) for r in _read(args.results) if all(r[k] == settings[k] for k in SETTINGS)
        }
        for seed in args.seeds:
            for arm in ARMS:
                if (seed, arm) in done:
                    print(f"seed {seed} {arm}: already in {args.results}", file=sys.stderr)
                    continue
                with tempfile.TemporaryDirectory() as tmp:
                    record = search(seed, arm, settings, Path(tmp) / "run")
                _append(args.results, record)
                figures = {k: round(v, 4) for k, v in measures(record).items()}
                print(
                    f"seed {seed} {arm}: {figures} ({record['seconds']:.0f} s)", file=sys.stderr, flush=True
                )
    print(report([r for r in _read(args.results) if r["seed"] in args.seeds], settings))


if __name__ == "__main__":
    main()
