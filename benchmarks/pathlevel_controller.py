"""Does the path-level meta-controller find better cells than random decisions? (issue #9)

The paper's claim (Cai et al. 2018) is that the learned tree-LSTM controller finds better cells
than random sampling. At small scale, equal compute: for each seed, the same spec (a digits MLP
with a shared cell, base net trained 4 epochs) is searched twice through `growdsl.api`, exactly
as `growdsl run` runs it, with `controller: treelstm` and with `controller: random`: the same
base net (same seed), the same number of children (episodes x batch), each trained the same
epochs. Reports, per arm, mean ± std over seeds of: the best child's validation accuracy (what
the search maximises), the mean of the top 5 children's, the mean of the last two episodes'
children (does the sampling policy move?), the best child's test accuracy and its params; and
the base net's validation accuracy. Markdown on stdout, progress on stderr. Deterministic on the
CPU (one torch thread, seeded), so a rerun gives the same table.

    python benchmarks/pathlevel_controller.py [--seeds 0 1 2] [--episodes 5] [--batch 4] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from growdsl import api, lang

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


def _summary(run_dir: Path, last: int) -> dict[str, float]:
    lines = [json.loads(x) for x in (run_dir / "search.jsonl").read_text().splitlines()]
    children = [line for line in lines if line["event"] == "evaluate"]
    fitness = sorted((c["fitness"] for c in children), reverse=True)
    episodes = max(c["episode"] for c in children)
    late = [c["fitness"] for c in children if c["episode"] > episodes - last]
    best = lines[-1]
    params = next(c["params"] for c in children if c["member"] == best["member"])
    base = next(line for line in lines if line["event"] == "base")
    return {
        "best val": fitness[0],
        "top-5 val": statistics.mean(fitness[:5]),
        "late mean val": statistics.mean(late),
        "best test": best["test_acc"],
        "best params": params,
        "base val": base["fitness"],
        "children": len(children),
    }


def _mean_std(values: list[float], digits: int) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict[str, list[dict[str, float]]] = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for arm in ARMS:
                search = (
                    f"pathlevel(controller: {arm}, episodes: {args.episodes}, batch: {args.batch}, "
                    f"epochs: {args.epochs}, workers: 1)"
                )
                spec = lang.apply_overrides(
                    lang.parse_text(SPEC, "pathlevel_controller.grow"),
                    [f"train.seed={seed}", f"search={search}"],
                )
                start = time.perf_counter()
                out = Path(tmp) / f"{arm}-{seed}"
                api.run_spec(spec, out, quiet=True)
                results[arm].append(_summary(out, last=2))
                print(
                    f"seed {seed} {arm}: {results[arm][-1]} ({time.perf_counter() - start:.0f} s)",
                    file=sys.stderr,
                )
    columns = ("best val", "top-5 val", "late mean val", "best test", "best params", "base val")
    print(
        f"{args.episodes} episodes x {args.batch} children, {args.epochs} epochs each, seeds {args.seeds}\n"
    )
    print("| controller | " + " | ".join(columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    for arm in ARMS:
        cells = [_mean_std([r[c] for r in results[arm]], 0 if c == "best params" else 4) for c in columns]
        print(f"| {arm} | " + " | ".join(cells) + " |")
    print("\nper seed (best val, top-5 val, late mean val):")
    for arm in ARMS:
        rows = [
            f"{r['best val']:.4f} / {r['top-5 val']:.4f} / {r['late mean val']:.4f}" for r in results[arm]
        ]
        print(f"- {arm}: " + "; ".join(rows))


if __name__ == "__main__":
    main()
