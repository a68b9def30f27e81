"""Does firefly grow better networks than the alternatives at equal size? (issue #4)

Each arm is a whole `growdsl.run` of one spec: the net starts at its ranges' low ends and grows
every `--every` epochs for `--epochs` epochs (Adam). Arms: firefly (defaults), firefly with its
defaults before issue #11 (`steps: 10, samples: 512, candidates: 64`), firefly wider only
(`deeper: 0`), deeper only (`wider: 0, candidates: 0`), splitting (`split()`), random growth (the
same candidate kinds and per-step count, untrained random tensors applied at full scale
(`eps: 1`) and chosen by random scores), and the firefly run's final architecture (its
`final.grow`) trained from scratch for the same epochs. Reports the test accuracy and the
training loss (the epoch's mean mini-batch loss) of the last epoch, and params, mean ± std over
seeds.

    python benchmarks/firefly_quality.py [--tasks digits spirals cnn] [--seeds 0 1 2] [--epochs 16]
        [--every 4] [--arms ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
from pathlib import Path

import torch

from growdsl import api  # noqa: F401 - imports growdsl.run before growdsl.grow (an import cycle)
from growdsl.grow import registry
from growdsl.grow.firefly import FireflyTransform
from growdsl.ir import param_count
from growdsl.lang import parse_text
from growdsl.run import run

TASKS = {
    "digits": (
        "digits(test: 0.2)",
        "flatten linear(8..64) relu linear(8..64) relu repeat 1..3 { linear(8..64) relu } linear(classes)",
    ),
    "spirals": (
        "spirals(n: 2000, noise: 0.2, turns: 2)",
        "linear(4..48) relu linear(4..48) relu repeat 1..3 { linear(4..48) relu } linear(classes)",
    ),
    "cnn": (
        "digits(test: 0.2)",
        "conv(4..16) bn relu conv(4..16) bn relu "
        "repeat 1..3 { branch add { conv(4..16) bn relu conv(4..16) bn | identity } relu } "
        "gap flatten linear(classes)",
    ),
}
ARMS = {
    "firefly": "firefly()",
    "firefly, defaults before #11": "firefly(steps: 10, samples: 512, candidates: 64)",
    "firefly wider only": "firefly(deeper: 0)",
    "firefly deeper only": "firefly(wider: 0, candidates: 0)",
    "split": "split()",
    "random growth": "randomgrow(steps: 0, eps: 1)",
}


class RandomGrowth(FireflyTransform):
    """Firefly's candidates, untrained (stage 1 off), chosen by random scores: random growth of the
    same kinds and count."""

    def propose(self, net, train, loss_fn, rng):  # noqa: ANN001, ANN201
        cands = super().propose(net, train, loss_fn, rng)
        scores = torch.rand(len(cands), generator=rng).tolist()
        return [dataclasses.replace(c, score=s + 1e-6) for c, s in zip(cands, scores, strict=True)]


def _spec(task: str, grow: str | None, seed: int, epochs: int, every: int) -> str:
    data, body = TASKS[task]
    text = f"data {data}\nmodel m {{ {body} }}\n"
    text += f"train {{ epochs {epochs} batch 64 optimizer adam(lr: 0.003) seed {seed} }}\n"
    if grow:
        # the optimizer carried over, as when the recorded figures ran (the default before issue #20)
        text += (
            f"grow {{ every {every} epochs\nafter_growth(optimizer: carry, schedule: continue)\n{grow} }}\n"
        )
    return text


def _one(text: str, out: Path):  # noqa: ANN202
    result = run(parse_text(text, "bench.grow"), out, quiet=True)
    last = [r for r in result.history if r["event"] == "epoch"][-1]
    return last["acc"], last["loss"], param_count(result.graph)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    args = parser.parse_args()
    registry.IMPLEMENTED_TRANSFORMS["randomgrow"] = RandomGrowth.from_call
    registry.KNOWN_TRANSFORMS["randomgrow"] = "random growth (benchmark)"
    print(f"epochs {args.epochs}, grow every {args.every}, seeds {args.seeds}")
    print("| task | arm | test accuracy | training loss | params |\n| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            results: dict[str, list[tuple[float, float, int]]] = {}
            for seed in args.seeds:
                for arm in args.arms:
                    grow = ARMS[arm]
                    out = Path(tmp) / f"{task}-{arm}-{seed}".replace(" ", "_")
                    results.setdefault(arm, []).append(
                        _one(_spec(task, grow, seed, args.epochs, args.every), out)
                    )
                    if arm == "firefly":  # `growdsl run final.grow`: same data, training, epochs
                        text = (out / "final.grow").read_text()
                        results.setdefault("firefly's final net from scratch", []).append(
                            _one(text, Path(tmp) / f"{task}-scratch-{seed}")
                        )
            for arm, rows in results.items():
                accs, losses, params = zip(*rows, strict=True)
                print(
                    f"| {task} | {arm} | {statistics.mean(accs):.4f} ± {statistics.stdev(accs):.4f} | "
                    f"{statistics.mean(losses):.4f} ± {statistics.stdev(losses):.4f} | "
                    f"{statistics.mean(params):.0f} ± {statistics.stdev(params):.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
