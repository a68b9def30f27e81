"""Cost of one split step (exact and fast) as a ratio of one training epoch on the same data.

The claim under test (issue #3): the fast method (batched Lanczos on S v products, never forming
S) costs at most one epoch at width 1024 and is faster than the exact method (forming every S_i
and a batched `eigh`) from width 256 up. The network is an MLP on digits, flatten -> linear(W)
tanh -> linear(W) tanh -> linear(10), so the second layer's neurons have D = W + 1 inputs. An
epoch is SGD with batch 64 over the training split; a split step is `SplitTransform.propose`
(one forward and backward on `samples` training rows, then every layer's eigenpairs). Each is
timed `--repeats` times and the fastest kept (noise on a shared machine only adds time).

    python benchmarks/split_cost.py [--widths 64 256 1024] [--repeats 3] [--samples 256]
        [--data "digits(test: 0.2)"] [--skip-exact-above 1024]

A split step's cost does not depend on the size of the training set (it reads `samples` rows)
while an epoch's does, so the ratio is reported on digits (1,437 training rows, the smallest
epoch) and can be reported on a larger set with `--data`.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from growdsl import api
from growdsl.grow.net import Net
from growdsl.grow.split import SplitTransform
from growdsl.ir import lower
from growdsl.lang import parse_text, parse_value
from growdsl.run.datasets import describe, load_data


def _net(width: int, data: str = "digits(test: 0.2)") -> Net:
    body = f"flatten linear({width}..{4 * width}) tanh linear({width}..{4 * width}) tanh linear(classes)"
    info = describe(parse_value(data))
    graph = lower(parse_text(f"model mlp {{ {body} }}", "bench.grow"), info.input_shape, info.classes)
    return Net(graph, api.build_model(graph))


def sgd_epoch(net: Net, x: torch.Tensor, y: torch.Tensor, batch: int = 64) -> None:
    """One epoch of SGD (momentum 0.9, batch 64): the unit the growth benchmarks measure in."""
    opt = torch.optim.SGD(net.model.parameters(), lr=0.05, momentum=0.9)
    order = torch.randperm(len(x), device=x.device)
    net.model.train()
    for start in range(0, len(x), batch):
        idx = order[start : start + batch]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net.model(x[idx]), y[idx]).backward()
        opt.step()


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _fastest(fn, repeats: int) -> float:  # noqa: ANN001 - any callable
    best = float("inf")
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        fn()
        _sync()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--data", default="digits(test: 0.2)")
    parser.add_argument("--skip-exact-above", type=int, default=1024, help="widths above: fast only")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    x, y = (t.to(args.device) for t in load_data(parse_value(args.data), 0).train)
    cpu = platform.processor() or platform.machine()
    where = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"{torch.get_num_threads()} threads, {cpu}"
    )
    print(f"torch {torch.__version__}, {where}")
    print(f"{args.data}: train split {len(x)} rows, samples {args.samples}, fastest of {args.repeats}")
    print("| width | epoch (s) | exact step (s) | fast step (s) | exact/epoch | fast/epoch | fast/exact |")
    print("|" + "---|" * 7, flush=True)
    for width in args.widths:  # one row at a time: the exact step at width 1024 takes minutes
        net = _net(width, args.data)
        net.model.to(args.device)
        epoch = _fastest(lambda net=net: sgd_epoch(net, x, y), args.repeats)
        times = {}
        for method in ("fast", "exact") if width <= args.skip_exact_above else ("fast",):
            split = SplitTransform.from_call(parse_value(f"split(method: {method}, samples: {args.samples})"))
            step = lambda s=split, net=net: s.propose(net, (x, y), F.cross_entropy, torch.Generator())  # noqa: E731
            times[method] = _fastest(step, args.repeats)
        exact, fast = times.get("exact", float("nan")), times["fast"]
        print(
            f"| {width} | {epoch:.3f} | {exact:.3f} | {fast:.3f} | {exact / epoch:.2f} | {fast / epoch:.2f} "
            f"| {fast / exact:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
