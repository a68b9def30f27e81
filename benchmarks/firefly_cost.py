"""Cost of one firefly step (wider, deeper, both) as a ratio of one training epoch on the same data.

The claim under test (issue #4): a firefly step costs at most 1.5 epochs for a 3-layer MLP of
width 256 on digits. The net is flatten -> linear(256) relu -> linear(256) relu -> repeat 1..2
{ linear(256) relu } -> linear(10): two growable layers and one growable repeat. An epoch is SGD
with batch 64 over the training split; a step is `FireflyTransform.propose` (building the
augmented net, stage 1, one scoring pass) plus `apply` of the best `frac` of the candidates.
Each is timed `--repeats` times and the fastest kept (noise on a shared machine only adds time).

    python benchmarks/firefly_cost.py [--width 256] [--repeats 3] [--data "digits(test: 0.2)"] [--cpu-time]
                                      [--phases] [--device cpu]

A step reads `batch · steps + samples` rows whatever the training set, an epoch reads all of it,
so the ratio is reported on digits (1,438 training rows) and on a larger set with `--data`.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import torch
import torch.nn.functional as F
from split_cost import _sync, sgd_epoch  # benchmarks/ is on sys.path when run as a script

from growdsl import api
from growdsl.grow.firefly import FireflyTransform
from growdsl.grow.firefly import transform as transform_module
from growdsl.grow.firefly.augment import Augmented
from growdsl.grow.net import Net
from growdsl.grow.step import apply_chosen
from growdsl.ir import lower
from growdsl.lang import parse_text, parse_value
from growdsl.run.datasets import describe, load_data

VARIANTS = {
    "wider + deeper (defaults)": "firefly()",
    "wider only": "firefly(deeper: 0)",
    "deeper only": "firefly(wider: 0, candidates: 0)",
    "the defaults before issue #11": "firefly(steps: 10, samples: 512, candidates: 64)",
}


def _net(width: int, data: str) -> Net:
    body = (
        f"flatten linear({width}..{4 * width}) relu linear({width}..{4 * width}) relu "
        f"repeat 1..2 {{ linear({width}) relu }} linear(classes)"
    )
    info = describe(parse_value(data))
    graph = lower(parse_text(f"model mlp {{ {body} }}", "bench.grow"), info.input_shape, info.classes)
    return Net(graph, api.build_model(graph))


def _step(transform: FireflyTransform, net: Net, x, y) -> None:  # noqa: ANN001
    candidates = transform.propose(net, (x, y), F.cross_entropy, torch.Generator().manual_seed(0))
    best = sorted(candidates, key=lambda c: c.score, reverse=True)[: transform.limit(net)]
    apply_chosen(net, [(transform, best)])


PHASES = {  # (owner, attribute): what a default step spends its time on, for --phases
    "build the augmented net": (transform_module, "augment"),
    "stage 1": (FireflyTransform, "_stage_one"),
    "scoring pass": (Augmented, "scores"),
    "read out the candidates": (FireflyTransform, "_candidates"),
    "apply the chosen (carries, init)": (sys.modules[__name__], "apply_chosen"),
}


def _phases(transform: FireflyTransform, net: Net, x, y, clock, repeats: int) -> dict[str, float]:  # noqa: ANN001
    """Seconds per step in each of `PHASES` (the fastest of `repeats` steps, phase by phase), each
    wrapped in `clock` for the measurement."""
    spent = {name: [0.0] * repeats for name in PHASES}
    done = 0
    originals = {name: getattr(owner, attr) for name, (owner, attr) in PHASES.items()}

    def timed(name, fn):  # noqa: ANN001, ANN202
        def run(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name][done] += clock() - start

        return run

    for name, (owner, attr) in PHASES.items():
        setattr(owner, attr, timed(name, originals[name]))
    try:
        for done in range(repeats):  # noqa: B007 - `timed` reads it
            _step(transform, net, x, y)
    finally:
        for name, (owner, attr) in PHASES.items():
            setattr(owner, attr, originals[name])
    return {name: min(times) for name, times in spent.items()}


def _timed(fn, clock=time.perf_counter) -> float:  # noqa: ANN001 - any callable
    _sync()  # a GPU's queued work is timed where it was issued
    start = clock()
    fn()
    _sync()
    return clock() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", default="digits(test: 0.2)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="one thread, timed by CPU time: a ratio that other jobs on the machine barely move",
    )
    parser.add_argument(
        "--phases",
        action="store_true",
        help="also the default step's time by phase (the fastest of the repeats)",
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    clock = time.process_time if args.cpu_time else time.perf_counter
    if args.cpu_time:
        torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = (t.to(args.device) for t in load_data(parse_value(args.data), 0).train)
    net = _net(args.width, args.data)
    net.model.to(args.device)
    transforms = {name: FireflyTransform.from_call(parse_value(call)) for name, call in VARIANTS.items()}
    epoch, steps = float("inf"), dict.fromkeys(VARIANTS, float("inf"))
    for _ in range(args.repeats):  # interleaved, so machine noise hits epochs and steps alike
        epoch = min(epoch, _timed(lambda: sgd_epoch(net, x, y), clock))
        for name, transform in transforms.items():
            steps[name] = min(steps[name], _timed(lambda t=transform: _step(t, net, x, y), clock))
    cpu = platform.processor() or platform.machine()
    threads = f"{torch.get_num_threads()} threads, {cpu}"
    where = torch.cuda.get_device_name() if x.device.type == "cuda" else threads
    print(f"torch {torch.__version__}, {where}")
    timing = "CPU time" if args.cpu_time else "wall-clock time"
    print(f"{args.data}: train split {len(x)} rows, width {args.width}, fastest of {args.repeats}, {timing}")
    print("| step | step (s) | epoch (s) | step / epoch |\n| --- | --- | --- | --- |")
    for name, call in VARIANTS.items():
        print(f"| {name}: `{call}` | {steps[name]:.3f} | {epoch:.3f} | {steps[name] / epoch:.2f} |")
    if args.phases:
        default = transforms["wider + deeper (defaults)"]
        print("| phase of a default step | seconds |\n| --- | --- |")
        for name, seconds in _phases(default, net, x, y, clock, args.repeats).items():
            print(f"| {name} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
