"""Training throughput of a compiled growdsl net against the same net written by hand.

The claim under test: compiling a graph costs nothing at training time. Each architecture is
written once as a `.grow` model (parsed, lowered and compiled, nesting and all) and once as an
idiomatic hand-written `nn.Module` (weight layers as modules, activations as functions). Both
start from the same weights (checked: their outputs agree) and train on the same batches with
SGD; the two are timed alternately in one process, several rounds, so drift in the machine hits
both alike. The figure is samples per second over forward + backward + optimizer step, and the
ratio compiled / hand-written throughput (target >= 0.97), both from each net's fastest chunk
(noise on a shared machine only ever adds time) and per round.

    python benchmarks/throughput.py [--rounds 7] [--batches 64 256] [--threads N] [--markdown] [--device cpu]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from growdsl.compile import compile_graph
from growdsl.ir.lower import lower
from growdsl.lang import parse_text

INPUT = (1, 8, 8)  # scikit-learn's digits
CLASSES = 10

MLP_SPEC = """
model mlp {
    flatten
    linear(64) as hidden1  relu
    linear(64) as hidden2  relu
    linear(classes)
}
"""

CNN_SPEC = """
block res(c) {
    branch add {
        conv(c, k: 3) bn relu conv(c, k: 3) bn
      | identity
    }
    relu
}

model cnn {
    conv(16, k: 3) bn relu
    res(16)
    gap flatten linear(classes)
}
"""


class HandMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden1 = nn.Linear(64, 64)
        self.hidden2 = nn.Linear(64, 64)
        self.out = nn.Linear(64, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        x = F.relu(self.hidden1(x))
        x = F.relu(self.hidden2(x))
        return self.out(x)


class HandCNN(nn.Module):
    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1)
        self.stem_bn = nn.BatchNorm2d(c)
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c)
        self.head = nn.Linear(c, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_bn(self.stem(x)))
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        x = F.relu(y + x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.head(x)


def compiled_net(text: str) -> nn.Module:
    return compile_graph(lower(parse_text(text, "<benchmark>"), INPUT, CLASSES))


def same_weights(compiled: nn.Module, hand: nn.Module) -> None:
    """Copy the compiled net's weights into the hand-written one (same order) and check outputs."""
    hand.load_state_dict(dict(zip(hand.state_dict(), compiled.state_dict().values(), strict=True)))
    x = torch.randn(4, *INPUT, device=next(hand.parameters()).device)
    compiled.eval(), hand.eval()
    torch.testing.assert_close(compiled(x), hand(x))  # the two are the same function
    compiled.train(), hand.train()


def train_steps(net: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Seconds for one SGD step per batch (forward, backward, step), synchronised on CUDA."""
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    sync = torch.cuda.synchronize if batches[0][0].is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()
    sync()
    return time.perf_counter() - start


def measure(
    make: tuple[Callable[[], nn.Module], Callable[[], nn.Module]],
    batch: int,
    steps: int,
    rounds: int,
    device: torch.device,
) -> dict[str, float]:
    """Per round, `chunks` short runs of each net, interleaved A B B A ..., so load spikes from
    elsewhere on the machine fall on both; a round's ratio is hand time / compiled time."""
    torch.manual_seed(0)
    compiled, hand = make[0]().to(device), make[1]().to(device)
    same_weights(compiled, hand)
    gen = torch.Generator().manual_seed(1)
    batches = [
        (
            torch.randn(batch, *INPUT, generator=gen).to(device),
            torch.randint(CLASSES, (batch,), generator=gen).to(device),
        )
        for _ in range(steps)
    ]
    train_steps(compiled, batches), train_steps(hand, batches)  # warm-up: allocator, caches
    chunks = 8
    chunk = batches[: max(1, steps // chunks)]
    ratios, best = [], {"compiled": float("inf"), "hand": float("inf")}
    for r in range(rounds):
        total = {"compiled": 0.0, "hand": 0.0}
        for c in range(chunks):
            order = [("compiled", compiled), ("hand", hand)]
            if (r + c) % 2:
                order.reverse()  # neither always goes first
            for name, net in order:
                seconds = train_steps(net, chunk)
                total[name] += seconds
                best[name] = min(best[name], seconds)
        ratios.append(total["hand"] / total["compiled"])
    samples = len(chunk) * batch
    return {
        "compiled": samples / best["compiled"],
        "hand": samples / best["hand"],
        "best_ratio": best["hand"] / best["compiled"],
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


MODELS = {
    "mlp 64-64 on [1,8,8]": ((lambda: compiled_net(MLP_SPEC)), HandMLP, 400),
    "cnn 16ch + residual block": ((lambda: compiled_net(CNN_SPEC)), HandCNN, 60),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument(
        "--steps-scale", type=float, default=1.0, help="multiply each model's steps per round"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    for name, (make_compiled, make_hand, steps) in MODELS.items():
        for batch in args.batches:
            n = max(8, int(steps * args.steps_scale * 64 / batch))
            m = measure((make_compiled, make_hand), batch, n, args.rounds, device)
            rows.append((name, batch, m))

    where = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {device}"
    print(f"# {datetime.date.today()}  torch {torch.__version__}  {where}  threads {torch.get_num_threads()}")
    print(f"# {args.rounds} rounds of 8 interleaved chunks; samples/s and best ratio from each net's fastest")
    print(
        "# chunk; round ratio = hand time / compiled time per round (median, min..max); > 1: compiled faster"
    )
    header = (
        "model",
        "batch",
        "compiled samples/s",
        "hand samples/s",
        "best ratio",
        "round ratio",
        "min..max",
    )
    table = [
        (name, str(b), f"{m['compiled']:,.0f}", f"{m['hand']:,.0f}", f"{m['best_ratio']:.3f}",
         f"{m['ratio']:.3f}", f"{m['ratio_min']:.3f}..{m['ratio_max']:.3f}")
        for name, b, m in rows
    ]  # fmt: skip
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in table:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
        for row in [header, *table]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
