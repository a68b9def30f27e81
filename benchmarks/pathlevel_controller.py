"""Does the path-level meta-controller find better cells than random decisions? (issue #9)

The paper's claim (Cai et al. 2018) is that the learned tree-LSTM controller finds better cells
than random sampling. At small scale, equal compute: for each seed, the same spec (a digits MLP
with a shared cell, base net trained 4 epochs) is searched twice through `growdsl.api`, exactly
as `growdsl run` runs it, with `controller: treelstm` and with `controller: random`: the same
base net (same seed), the same number of children (episodes x batch), each trained the same
epochs. Reports, per arm, mean ± std over seeds of: the best child's validation accuracy (what
the search maximises), the mean of the top 5 children's, the mean of the last two episodes'
children (does the sampling policy move?), the best child's test accuracy and its params; and
the base net's validation accuracy. Then the comparison that can tell (issue #21): the difference
treelstm - random in the mean validation accuracy of the children of the second half of the
episodes (when a learned policy should have moved), with two 95% intervals: a paired t interval
over seeds (one difference per seed), and a Welch interval over the pooled children (each child
one sample; children of one seed share a base net, so this one is narrower than the truth).
Markdown on stdout, progress on stderr. Deterministic on the CPU (one torch thread, seeded), so a
rerun gives the same table.

    python benchmarks/pathlevel_controller.py [--seeds 0 1 2] [--episodes 10] [--batch 4] [--epochs 1]
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
    second_half = [c["fitness"] for c in children if c["episode"] > episodes // 2]
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
        "second half": second_half,
    }


def _mean_std(values: list[float], digits: int) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


# two-sided 95% quantiles of Student's t (scipy is not a dependency)
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def _t975(df: float) -> float:
    return _T975.get(int(df), 1.96 + 2.4 / max(df, 1.0))  # df >= 10: within 1% of the exact value


def _interval(mean: float, se: float, df: float) -> str:
    half = _t975(df) * se
    return f"{mean:+.4f} [{mean - half:+.4f}, {mean + half:+.4f}]"


def compare(results: dict[str, list[dict]]) -> list[str]:
    """The difference treelstm - random in the second half's mean child accuracy, with its
    paired-over-seeds and pooled-children (Welch) 95% intervals."""
    learned, uniform = results["treelstm"], results["random"]
    diffs = [
        statistics.mean(a["second half"]) - statistics.mean(b["second half"])
        for a, b in zip(learned, uniform, strict=True)
    ]
    lines = []
    if len(diffs) > 1:
        se = statistics.stdev(diffs) / len(diffs) ** 0.5
        lines.append(
            f"- paired over {len(diffs)} seeds: {_interval(statistics.mean(diffs), se, len(diffs) - 1)}"
        )
    a = [x for r in learned for x in r["second half"]]
    b = [x for r in uniform for x in r["second half"]]
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    lines.append(
        f"- pooled children ({len(a)} vs {len(b)}, Welch, df {df:.0f}): "
        + _interval(statistics.mean(a) - statistics.mean(b), (va + vb) ** 0.5, df)
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--base-epochs", type=int, default=4)
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
                    [f"train.seed={seed}", f"train.epochs={args.base_epochs}", f"search={search}"],
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
        f"{args.episodes} episodes x {args.batch} children, {args.epochs} epochs each, "
        f"base {args.base_epochs} epochs, seeds {args.seeds}\n"
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
    print("\ntreelstm - random, mean validation accuracy of the second half's children (95% intervals):")
    print("\n".join(compare(results)))


if __name__ == "__main__":
    main()
