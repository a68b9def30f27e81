"""What augmentation costs a training epoch: ResNet-20 on CIFAR-shaped images, crop+flip+cutout
against none, on the CPU, in one process.

The claim under test (issue #18): batched augmentation on the device costs at most 10% of an
epoch (augmented / plain epoch time <= 1.10). The net is benchmarks/specs/resnet20_patterns.grow
(ResNet-20 on growdsl's generated `patterns` images, 3x32x32, 10 classes); the augmented epoch
uses `augment: [crop(pad: 4), flip, cutout(size: 16)]`, the plain one the same stored images
without it. Both run the training loop's own `train_epoch` (so the batches are indexed,
standardized and augmented exactly as in `growdsl run`) from the same weights and generator
state, alternating which goes first each round, so drift in the machine hits both alike; wall
and CPU time (all of this process's threads) are both recorded: on a loaded machine the wall
time measures the other processes as much as this one. Also timed alone (CPU): one epoch of
batches without the net, plain and augmented (the data path's own cost).

    python benchmarks/augment_cost.py [--n 10000] [--rounds 3] [--threads N] [--markdown]
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from growdsl.compile import compile_graph
from growdsl.ir.lower import lower
from growdsl.lang import apply_overrides, load
from growdsl.run.batches import training_batches
from growdsl.run.config import build_optimizer, train_config
from growdsl.run.datasets import describe, load_data
from growdsl.run.loop import TrainState, batches, train_epoch
from growdsl.run.progress import TrainingProgress

SPEC = Path(__file__).parent / "specs" / "resnet20_patterns.grow"
AUGMENT = "[crop(pad: 4), flip, cutout(size: 16)]"


def epoch_seconds(spec, graph, weights, train, seed: int) -> tuple[float, float]:
    """Wall and CPU seconds (this process's threads together) of one `train_epoch` of the spec's
    net from `weights` on `train`."""
    config = train_config(spec.train, regression=False)
    model = compile_graph(graph)
    model.load_state_dict(weights)
    state = TrainState(graph, model, build_optimizer(config.optimizer, model.parameters()), None,
                       torch.Generator().manual_seed(seed))  # fmt: skip
    with TrainingProgress(False, 1, 1) as progress:
        start, cpu = time.perf_counter(), time.process_time()
        train_epoch(state, train, config, progress)
        return time.perf_counter() - start, time.process_time() - cpu


def batches_seconds(train, batch: int, seed: int) -> float:
    """CPU seconds to produce one epoch of training batches (no net)."""
    gen = torch.Generator().manual_seed(seed)
    start = time.process_time()
    for _ in training_batches(train, batches(len(train[0]), batch, gen, train[0].device), gen):
        pass
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000, help="images generated (a tenth held out)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = apply_overrides(load(SPEC), [f"data.n={args.n}", f"data.augment={AUGMENT}"])
    info = describe(spec.data)
    graph = lower(spec, info.input_shape, info.classes)
    torch.manual_seed(0)
    weights = copy.deepcopy(compile_graph(graph).state_dict())
    augmented = load_data(spec.data, 0).train
    plain = (replace(augmented[0], augment=None), augmented[1])
    runs = {"plain": plain, "augmented": augmented}
    batch = train_config(spec.train, regression=False).batch
    data_only = {name: [] for name in runs}
    epochs = {name: [] for name in runs}  # wall seconds
    cpu = {name: [] for name in runs}
    for r in range(args.rounds):
        order = list(runs) if r % 2 == 0 else list(reversed(runs))
        for name in order:
            data_only[name].append(batches_seconds(runs[name], batch, r))
        for name in order:
            wall, used = epoch_seconds(spec, graph, weights, runs[name], r)
            epochs[name].append(wall)
            cpu[name].append(used)
            print(f"round {r + 1}: {name} epoch {wall:.2f} s wall, {used:.2f} s CPU", flush=True)
    ratios = [a / p for a, p in zip(epochs["augmented"], epochs["plain"], strict=True)]
    cpu_ratios = [a / p for a, p in zip(cpu["augmented"], cpu["plain"], strict=True)]
    fastest = min(epochs["augmented"]) / min(epochs["plain"])
    fastest_cpu = min(cpu["augmented"]) / min(cpu["plain"])
    extra = min(data_only["augmented"]) - min(data_only["plain"])
    lines = [
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{len(augmented[0])} training images, batch {batch}, {args.rounds} rounds",
        "",
        "| | plain | crop+flip+cutout | ratio |",
        "| --- | --- | --- | --- |",
        f"| epoch, fastest (s) | {min(epochs['plain']):.2f} | {min(epochs['augmented']):.2f} "
        f"| {fastest:.3f} |",
        f"| epoch wall ratio per round | | | {', '.join(f'{x:.3f}' for x in ratios)} "
        f"(median {statistics.median(ratios):.3f}) |",
        f"| epoch CPU, fastest (s) | {min(cpu['plain']):.2f} | {min(cpu['augmented']):.2f} "
        f"| {fastest_cpu:.3f} |",
        f"| epoch CPU ratio per round | | | {', '.join(f'{x:.3f}' for x in cpu_ratios)} "
        f"(median {statistics.median(cpu_ratios):.3f}) |",
        f"| batches alone, fastest CPU (s) | {min(data_only['plain']):.3f} | "
        f"{min(data_only['augmented']):.3f} | +{extra:.3f} s = {extra / min(cpu['plain']):.1%} of a plain "
        "epoch's CPU |",
    ]
    print("\n".join(lines) if args.markdown else "\n".join(line.replace("|", " ") for line in lines))


if __name__ == "__main__":
    main()
