"""Does splitting grow better networks than the alternatives at equal size? (issue #3)

For each task and seed: (grown) an MLP starting at the ranges' low ends, split every `--every`
epochs by `split(method: ...)`, up to the limit per step and the ranges' high ends; (a) the grown
net's final architecture trained from scratch for the same total epochs; (b) random splitting:
the same number of splits per layer at every step, of random neurons along random unit directions
(same ε, same surgery); (c) the ranges' high end trained from scratch. All arms use the same data,
optimizer (Adam, rebuilt after each growth step) and batches. Reports test accuracy and params,
mean ± std over seeds.

    python benchmarks/split_quality.py [--seeds 0 1 2] [--epochs 30] [--every 5] [--method fast]
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F

from growdsl import api
from growdsl.grow.net import Net
from growdsl.grow.split import SplitChoice, SplitTransform
from growdsl.grow.splitting.schemes import POSITIVE
from growdsl.grow.transform import Candidate
from growdsl.ir import lower, param_count
from growdsl.lang import parse_text, parse_value
from growdsl.run.datasets import load_data

TASKS = {
    "digits": (
        "digits(test: 0.2)",
        (1, 8, 8),
        10,
        "flatten linear({a}) tanh linear({b}) tanh linear(classes)",
        (4, 32),
    ),
    "spirals": (
        "spirals(n: 2000, noise: 0.2, turns: 2)",
        (2,),
        2,
        "linear({a}) tanh linear({b}) tanh linear(classes)",
        (4, 48),
    ),
}


def _net(task: str, widths: tuple[str, str]) -> Net:
    _, shape, classes, body, _ = TASKS[task]
    graph = lower(
        parse_text(f"model m {{ {body.format(a=widths[0], b=widths[1])} }}", "q.grow"), shape, classes
    )
    return Net(graph, api.compile(graph))


def _train(net: Net, x, y, epochs: int, gen: torch.Generator, batch: int = 64) -> None:  # noqa: ANN001
    opt = torch.optim.Adam(net.model.parameters(), lr=3e-3)
    net.model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch):
            idx = order[start : start + batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net.model(x[idx]), y[idx]).backward()
            opt.step()


@torch.no_grad()
def _accuracy(net: Net, x, y) -> float:  # noqa: ANN001
    net.model.eval()
    return float((net.model(x).argmax(1) == y).float().mean())


def _pick(cands: list[Candidate], net: Net, limit: int) -> list[Candidate]:
    """Best by score, within `limit` and each layer's range."""
    room = {n: net.graph[n]["width"][1] - net.graph[n]["args"]["out"] for n in {c.node for c in cands}}
    taken = []
    for c in sorted(cands, key=lambda c: c.score, reverse=True):
        if len(taken) < limit and room[c.node] >= c.width:
            taken.append(c)
            room[c.node] -= c.width
    return taken


def _random_like(chosen: list[Candidate], net: Net, gen: torch.Generator) -> list[Candidate]:
    """As many splits per layer as `chosen`, of random neurons along random unit directions."""
    out = []
    for node in {c.node for c in chosen}:
        k = sum(c.node == node for c in chosen)
        width = net.graph[node]["args"]["out"]
        dim = len(chosen[[c.node for c in chosen].index(node)].payload.direction)
        for neuron in torch.randperm(width, generator=gen)[:k].tolist():
            v = torch.randn(dim, generator=gen)
            out.append(
                Candidate("split", node, 0.0, 0, payload=SplitChoice(neuron, POSITIVE, v / v.norm(), 0.0))
            )
    return out


def _grow(task: str, x, y, args, seed: int, random: bool) -> Net:  # noqa: ANN001
    lo, hi = TASKS[task][4]
    torch.manual_seed(seed)
    net = _net(task, (f"{lo}..{hi}", f"{lo}..{hi}"))
    split = SplitTransform.from_call(parse_value(f"split(method: {args.method}, frac: {args.frac})"))
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(0, args.epochs, args.every):
        _train(net, x, y, min(args.every, args.epochs - epoch), gen)
        if epoch + args.every >= args.epochs:
            break
        cands = split.propose(net, (x, y), F.cross_entropy, torch.Generator().manual_seed(seed + epoch))
        chosen = _pick(cands, net, split.limit(net))
        if chosen:
            net = split.apply(net, _random_like(chosen, net, gen) if random else chosen).net
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--frac", type=float, default=0.25)
    parser.add_argument("--method", default="fast")
    args = parser.parse_args()
    print(f"epochs {args.epochs}, split every {args.every}, frac {args.frac}, method {args.method}")
    print("| task | arm | test acc (mean ± std) | params |")
    print("|---|---|---|---|")
    for task in args.tasks:
        results: dict[str, list[tuple[float, int]]] = {}
        for seed in args.seeds:
            splits = load_data(parse_value(TASKS[task][0]), seed)
            (x, y), (xt, yt) = splits.train, splits.test
            grown = _grow(task, x, y, args, seed, random=False)
            randomly = _grow(task, x, y, args, seed, random=True)
            final = tuple(
                str(grown.graph[n]["args"]["out"]) for n in grown.graph.ops() if grown.graph[n].get("width")
            )
            arms = {"grown (split)": grown, "(b) random splitting": randomly}
            for name, widths in (
                ("(a) final arch from scratch", final),
                ("(c) range high end", (str(TASKS[task][4][1]),) * 2),
            ):
                torch.manual_seed(seed)
                net = _net(task, widths)
                _train(net, x, y, args.epochs, torch.Generator().manual_seed(seed))
                arms[name] = net
            for name, net in arms.items():
                results.setdefault(name, []).append((_accuracy(net, xt, yt), param_count(net.graph)))
        for name, runs in results.items():
            accs = [a for a, _ in runs]
            params = statistics.mean(p for _, p in runs)
            std = statistics.stdev(accs) if len(accs) > 1 else 0.0
            print(f"| {task} | {name} | {statistics.mean(accs):.4f} ± {std:.4f} | {params:.0f} |")


if __name__ == "__main__":
    main()
