"""How well the second-order model predicts a split step's loss decrease, per activation and ε.

For an MLP on digits (`flatten linear(32..64) ACT linear(32..64) ACT linear(10)`, trained with
Adam for `--epochs` full-batch steps from a seeded start), the splits one `split(eps: auto)`
step would take (the `frac: 0.25` best by predicted decrease per parameter) are applied at each ε
of the line search's grid, and the measured loss decrease on the 256 scoring rows (float64) is
divided by the predicted one, `(ε²/2) Σ λ_min` (docs/methods/splitting.md). A ratio of 1 means
the model is exact; the table gives the median over seeds and the range.

    python benchmarks/split_prediction.py [--activations tanh sigmoid gelu relu] [--seeds 0 1 2 3 4]
        [--epochs 200]
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F

from growdsl import api
from growdsl.grow.eps_search import EPS_GRID
from growdsl.grow.net import Net
from growdsl.grow.split import SplitTransform
from growdsl.ir import lower
from growdsl.lang import parse_text, parse_value
from growdsl.run.datasets import load_data


def _ratios(activation: str, seed: int, epochs: int, x, y) -> list[float]:  # noqa: ANN001
    body = f"flatten linear(32..64) {activation} linear(32..64) {activation} linear(classes)"
    graph = lower(parse_text(f"model mlp {{ {body} }}", "bench.grow"), (1, 8, 8), 10)
    torch.manual_seed(seed)
    model = api.build_model(graph)
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(epochs):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    transform = SplitTransform.from_call(parse_value("split(eps: auto)"))
    cands = transform.propose(Net(graph, model), (x, y), F.cross_entropy, torch.Generator().manual_seed(seed))
    search = cands[0].payload.search
    return [m / p for p, m in zip(search.predicted, search.measured, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--activations", nargs="+", default=["tanh", "sigmoid", "gelu", "relu"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
    x, y = load_data(parse_value("digits(test: 0.2)"), 0).train
    print(f"measured / predicted loss decrease, median [min, max] over seeds {args.seeds}")
    print("| activation | " + " | ".join(f"ε = {e:g}" for e in EPS_GRID) + " |")
    print("| --- |" + " --- |" * len(EPS_GRID))
    for activation in args.activations:
        runs = [_ratios(activation, seed, args.epochs, x, y) for seed in args.seeds]
        cells = []
        for column in zip(*runs, strict=True):
            cells.append(f"{statistics.median(column):.3f} [{min(column):.2f}, {max(column):.2f}]")
        print(f"| {activation} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
