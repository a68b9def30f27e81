"""Continual learning on split digits (5 tasks of 2 classes, one head per task): does growing with
firefly while old neurons stay frozen beat the alternatives? (issue #4, item 5)

Each arm is a whole `growdsl.run` of a `data digits(tasks: split(5))` spec, `--epochs` epochs per
task (Adam). Arms:

- firefly: starts at `--start` neurons per hidden layer, grows `--count` new neurons at each task
  start (`firefly(wider: 32, count: N)`, candidates of both layers pooled), old neurons frozen;
- random growth: the same, but the new neurons are untrained random ones (stage 1 off, applied
  at full scale `eps: 1`, chosen by random scores) — same count per task;
- fixed, no freezing: one network of firefly's final widths (same seed), trained on the tasks in
  sequence with nothing frozen — the forgetting baseline;
- fixed, frozen: the same network with the old-neuron freeze but no growth — after task 0 only
  the heads train.

Reports the average test accuracy over the 5 tasks (each with its own head, measured after the
last task) and the final params, mean ± std over seeds.

    python benchmarks/firefly_continual.py [--seeds 0 1 2] [--epochs 6] [--start 16] [--count 16]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from firefly_quality import RandomGrowth  # benchmarks/ is on the path when run as a script

from growdsl import api  # noqa: F401 - imports growdsl.run before growdsl.grow (an import cycle)
from growdsl.grow import registry
from growdsl.grow.freeze import Freeze
from growdsl.ir import param_count
from growdsl.lang import parse_text
from growdsl.run import continual, run

ARMS = ("firefly", "random growth", "fixed, no freezing", "fixed, frozen")


class NoFreeze(Freeze):
    """The freeze that freezes nothing: the forgetting baseline."""

    def lay(self, graph, model, optimizer) -> None:  # noqa: ANN001
        self.model, self.optimizer = model, optimizer


def _spec(seed: int, epochs: int, widths: tuple[int, int], grow: str | None) -> str:
    h1, h2 = widths
    text = "data digits(tasks: split(5), test: 0.25)\n"
    text += (
        f"model m {{ flatten linear({h1}..128) as h1 relu linear({h2}..128) as h2 relu linear(classes) }}\n"
    )
    text += f"train {{ epochs {epochs} batch 32 optimizer adam(lr: 0.003) seed {seed} device cpu }}\n"
    if grow:
        # the optimizer carried over, as when the recorded figures ran (the default before issue #20)
        text += (
            f"grow {{ every {epochs} epochs\nafter_growth(optimizer: carry, schedule: continue)\n{grow} }}\n"
        )
    return text


def _one(text: str, out: Path, freeze: type[Freeze] = Freeze):  # noqa: ANN202
    continual.Freeze = freeze
    try:
        result = run(parse_text(text, "bench.grow"), out, quiet=True)
    finally:
        continual.Freeze = Freeze
    widths = tuple(result.graph[n]["args"]["out"] for n in ("m.h1", "m.h2"))
    return result.final_metrics["avg_acc"], param_count(result.graph), widths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--start", type=int, default=16)
    parser.add_argument("--count", type=int, default=16)
    args = parser.parse_args()
    registry.IMPLEMENTED_TRANSFORMS["randomgrow"] = RandomGrowth.from_call
    registry.KNOWN_TRANSFORMS["randomgrow"] = "random growth (benchmark)"
    start = (args.start, args.start)
    print(f"{args.epochs} epochs per task, start {args.start}, +{args.count} per task, seeds {args.seeds}")
    results: dict[str, list[tuple[float, int]]] = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            firefly = f"firefly(wider: 32, count: {args.count})"
            acc, params, final = _one(_spec(seed, args.epochs, start, firefly), Path(tmp) / f"ff{seed}")
            results["firefly"].append((acc, params))
            rand = f"randomgrow(wider: 32, count: {args.count}, steps: 0, eps: 1)"
            acc, params, _ = _one(_spec(seed, args.epochs, start, rand), Path(tmp) / f"rg{seed}")
            results["random growth"].append((acc, params))
            fixed = _spec(seed, args.epochs, final, None)
            acc, params, _ = _one(fixed, Path(tmp) / f"nf{seed}", NoFreeze)
            results["fixed, no freezing"].append((acc, params))
            acc, params, _ = _one(fixed, Path(tmp) / f"fz{seed}")
            results["fixed, frozen"].append((acc, params))
            print(f"seed {seed}: " + ", ".join(f"{a} {r[-1][0]:.4f}" for a, r in results.items()), flush=True)
    print("| arm | average accuracy (5 tasks) | final params |\n| --- | --- | --- |")
    for arm, rows in results.items():
        accs, params = [a for a, _ in rows], [p for _, p in rows]
        spread = (statistics.stdev(accs), statistics.stdev(params)) if len(rows) > 1 else (0.0, 0.0)
        print(
            f"| {arm} | {statistics.mean(accs):.4f} ± {spread[0]:.4f} | "
            f"{statistics.mean(params):.0f} ± {spread[1]:.0f} |"
        )


if __name__ == "__main__":
    main()
