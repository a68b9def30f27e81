"""Path-level growth in a `grow` block against the same final architecture trained from scratch
(issue #9).

Each arm is a whole `growdsl.run` of `specs/pathlevel_cell.grow` (a digits CNN whose shared cell,
used twice, grows by path-level transforms every 2 of 8 epochs, Adam, batch 64) with
`train.seed` set to each seed (the data split, the initial weights and the growth all follow it):

- `grown (score)`: the spec as shipped (each step takes the candidate with the largest measured
  loss decrease);
- `grown (random)`: the same with `choose: random` (the paper's random baseline);
- `final net from scratch`: the `grown (score)` run's `final.grow` (the same architecture, sizes
  fixed, same data, training and epochs) trained from a fresh initialisation;
- `start net, no growth`: the spec without its grow block.

Test accuracy (the held-out split of digits(test: 0.2)) and params at the end, mean ± std over
seeds. One torch thread, so the table reproduces on the same machine and torch.

    python benchmarks/pathlevel_quality.py [--seeds 0 1 2] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from growdsl.ir import param_count
from growdsl.lang import parse_text
from growdsl.run import run

SPEC = Path(__file__).parents[1] / "specs" / "pathlevel_cell.grow"


def _text(seed: int, epochs: int, every: int, grow: str) -> str:
    """The spec with `seed`, `epochs`, growth `every` epochs and the arm's grow block (`grow`:
    `score`, `random` or `none`)."""
    text = SPEC.read_text()
    for old, new in (
        ("seed 0", f"seed {seed}"),
        ("epochs 8", f"epochs {epochs}"),
        # the optimizer carried over, as when the recorded figures ran (the default before issue #20)
        ("every 2 epochs", f"every {every} epochs\n    after_growth(optimizer: carry, schedule: continue)"),
        ("count: 1)", "count: 1, choose: random)" if grow == "random" else "count: 1)"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text[: text.index("grow {")] if grow == "none" else text


def _one(text: str, out: Path) -> tuple[float, int]:
    """Test accuracy and params at the end of the run; prints the growth steps it took."""
    result = run(parse_text(text, "bench.grow"), out, quiet=True)
    steps = [f"{g['detail']['op']} at {g['detail']['at']}" for g in result.history if g["event"] == "grow"]
    if steps:
        print(f"  {out.name}: " + "; ".join(steps), flush=True)
    return result.final_metrics["test_acc"], param_count(result.graph)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="one seed, 2 epochs, growth after the first")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds, epochs, every = ([0], 2, 1) if args.quick else (args.seeds, 8, 2)
    results: dict[str, list[tuple[float, int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for arm, grow in (("grown (score)", "score"), ("grown (random)", "random")):
                out = Path(tmp) / f"{grow}-{seed}"
                results.setdefault(arm, []).append(_one(_text(seed, epochs, every, grow), out))
                if grow == "score":
                    scratch = (out / "final.grow").read_text()
                    results.setdefault("final net from scratch", []).append(
                        _one(scratch, Path(tmp) / f"scratch-{seed}")
                    )
            results.setdefault("start net, no growth", []).append(
                _one(_text(seed, epochs, every, "none"), Path(tmp) / f"none-{seed}")
            )
            print(f"seed {seed}: " + ", ".join(f"{a} {r[-1][0]:.4f}/{r[-1][1]}" for a, r in results.items()))
    print(f"{SPEC.name}, {epochs} epochs, growth every {every}, seeds {seeds}, torch {torch.__version__}")
    print("| arm | test accuracy | params |\n| --- | --- | --- |")
    for arm, rows in results.items():
        accs, params = [a for a, _ in rows], [p for _, p in rows]
        spread = (lambda v: statistics.stdev(v)) if len(rows) > 1 else (lambda v: 0.0)
        print(
            f"| {arm} | {statistics.mean(accs):.4f} ± {spread(accs):.4f} | "
            f"{statistics.mean(params):.0f} ± {spread(params):.0f} |"
        )


if __name__ == "__main__":
    main()
