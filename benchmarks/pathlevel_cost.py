"""Cost of one path-level growth step as a ratio of one training epoch (issue #9).

The net is `specs/pathlevel_cell.grow`'s (a digits CNN with a shared cell used twice) and the
step is that spec's `pathlevel(...)`: `propose` (every applicable edit at both uses, each scored
by the loss after `steps` SGD steps of the candidate against the unchanged net on `samples`
training rows) plus `apply_chosen` of the best. It is measured on the net as it starts and after
each of `--grown` steps (the net grows and proposes more candidates). The same step with
`choose: random` (no scoring: finding the edits, the replaced edges' statistics, the carry of the
one taken) is timed beside it. An epoch is SGD, batch 64,
over the training split (`benchmarks/split_cost.py: sgd_epoch`) of the same net. Epochs and steps
are interleaved and each timed `--repeats` times in CPU seconds of the process (one torch thread,
so other jobs on a shared machine inflate them little), the fastest kept.

    python benchmarks/pathlevel_cost.py [--repeats 3] [--grown 2] [--quick]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from split_cost import sgd_epoch  # benchmarks/ is on sys.path when run as a script

from growdsl import api
from growdsl.grow.net import Net
from growdsl.grow.pathlevel import PathLevelTransform
from growdsl.grow.step import apply_chosen
from growdsl.lang.ast import TransformStmt
from growdsl.run.datasets import load_data

SPEC = Path(__file__).parents[1] / "specs" / "pathlevel_cell.grow"


def step(transform: PathLevelTransform, net: Net, x, y) -> tuple[Net, int]:  # noqa: ANN001
    """One growth step: propose, take the best `count`, apply; the new net and the candidates."""
    candidates = transform.propose(net, (x, y), F.cross_entropy, torch.Generator().manual_seed(0))
    best = sorted(candidates, key=lambda c: c.score, reverse=True)[: transform.limit(net)]
    return apply_chosen(net, [(transform, best)]).net, len(candidates)


def _timed(fn) -> float:  # noqa: ANN001 - any callable
    """CPU seconds of this process (one thread): what other jobs on the machine do not inflate."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--grown", type=int, default=2, help="steps taken after the first measurement")
    parser.add_argument("--quick", action="store_true", help="one repeat, no grown net: a smoke run")
    args = parser.parse_args()
    repeats, grown = (1, 0) if args.quick else (args.repeats, args.grown)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    spec = api.load(SPEC)
    (call,) = [s.call for s in spec.grow.statements if isinstance(s, TransformStmt)]
    transform = PathLevelTransform.from_call(call)
    x, y = load_data(spec.data, 0).train
    graph = api.lower(spec)
    net = Net(graph, api.build_model(graph))
    cpu = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, 1 thread, {cpu}; {SPEC.name} on digits ({len(x)} training rows)")
    print(f"CPU seconds, fastest of {repeats}, epochs and steps interleaved")
    random = PathLevelTransform({**transform.options, "choose": "random"}, None, call)
    print("| net | params | candidates | step (s) | random step (s) | epoch (s) | step / epoch |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for at in range(grown + 1):
        epoch, cost, cheap = float("inf"), float("inf"), float("inf")
        for _ in range(repeats):  # interleaved, so the machine's state hits all three alike
            epoch = min(epoch, _timed(lambda net=net: sgd_epoch(net, x, y)))
            cheap = min(cheap, _timed(lambda net=net: step(random, net, x, y)))
            start = time.process_time()
            after, n = step(transform, net, x, y)
            cost = min(cost, time.process_time() - start)
        params = sum(p.numel() for p in net.model.parameters())
        name = "as specified" if at == 0 else f"after {at} step{'s' * (at > 1)}"
        print(
            f"| {name} | {params:,} | {n} | {cost:.3f} | {cheap:.3f} | {epoch:.3f} | {cost / epoch:.2f} |",
            flush=True,
        )
        net = after


if __name__ == "__main__":
    main()
