"""Issue #20's goal, measured by `growdsl payoff` on a task no growth setting was tuned on: does a
growth method reach its final net trained from scratch (within 0.5 point, paired), beat the start
net, and cost less training compute than the width sweep?

The task is scikit-learn's `make_classification` (generated here, never used to choose any
growth option: 2,500 rows, 20 features of which 8 informative, 4 classes, 2 clusters a class,
5 % of labels flipped), written to a CSV that the spec reads with `data csv(...)`. The spec uses
growdsl's growth defaults (every ceil(40 / 6) = 7 epochs, a fresh optimizer and a restarted
schedule).

    python benchmarks/payoff_untuned.py [--method split|firefly] [--every N | --plateau] [--seeds 5]
        [--workers 2] [--json FILE]

`--every N` grows every N epochs instead; `--plateau` at convergence, the smoothed relative plateau
that was the default before (`when plateau(patience: 3, rel: 0.01, smooth: 3)`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import suite_tasks as st
from sklearn.datasets import make_classification

from growdsl import api, strict_json
from growdsl.payoff import summary_lines

METHODS = {
    "split": "split(frac: 0.5, eps: 0.1, method: fast)",
    "firefly": "firefly(deeper: 0, frac: 0.5)",
}
MODEL = "linear(8..64) as h1 relu linear(8..64) as h2 relu linear(classes)"
TRAIN = "epochs 40 batch 64 optimizer adam(lr: 3e-3) seed 0"
PLATEAU = "when plateau(patience: 3, rel: 0.01, smooth: 3)"


def write_task(folder: Path) -> Path:
    x, y = make_classification(
        n_samples=2500, n_features=20, n_informative=8, n_redundant=4, n_classes=4,
        n_clusters_per_class=2, flip_y=0.05, random_state=20,
    )  # fmt: skip
    return st.write_csv(folder / "untuned.csv", x, y, "label")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=sorted(METHODS), default="split")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--every", type=int, help="grow every N epochs (default: every sixth of the run)")
    when.add_argument("--plateau", action="store_true", help="grow at convergence (the default before)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = write_task(Path(tmp))
        when = f"every {args.every} epochs " if args.every else f"{PLATEAU} " if args.plateau else ""
        grow = f"{when}until params > 6000 {METHODS[args.method]}"
        text = st.spec_text(f'csv(path: "{csv}", target: "label", test: 0.2)', MODEL, TRAIN, grow)
        path = Path(tmp) / f"untuned_{args.method}{'_every' if args.every else ''}.grow"
        path.write_text(text)
        print(f"```\n{text}```\n")
        result = api.payoff_spec(
            api.load(path), seeds=args.seeds, widths=4, workers=args.workers,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )  # fmt: skip
    print("\n".join(summary_lines(result)))
    if args.json:
        args.json.write_text(strict_json.dumps(result.to_json(), indent=1))


if __name__ == "__main__":
    main()
