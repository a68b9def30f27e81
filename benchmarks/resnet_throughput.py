"""ResNet-20 training throughput: growdsl's loop against a hand-written loop, by precision and compile.

The claims under test (issue #18): growdsl's training loop on its compiled `.grow` ResNet-20
(benchmarks/specs/resnet20_cifar.grow) runs at least 0.95 of the images/s of a hand-written
PyTorch loop on a hand-written ResNet-20 with the same settings, and `precision bf16` is at least
1.5x `fp32` on a GPU. "The same settings": the same weights (copied, outputs checked equal), the
same generated CIFAR-shaped images resident on the device, the same batches (one seeded
permutation an epoch), SGD with the spec's options, the same autocast precision, memory format
and `torch.compile` backend. The growdsl side is `growdsl.run.loop.train_epoch`, the function
`growdsl run` trains with; the hand side is the loop a PyTorch user writes.

Per setting: one warm-up epoch of each (it compiles when compiling), then `--rounds` epochs of
each, alternated A B B A so load from elsewhere falls on both; images/s from each loop's fastest
epoch (noise on a shared machine only adds time), ratio = growdsl / hand.

    python benchmarks/resnet_throughput.py [--device cuda] [--images 10240] [--batch 128]
        [--precisions fp32 bf16] [--compile none inductor] [--memory-formats contiguous channels_last]
        [--rounds 3] [--width-scale 1.0]
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from growdsl import api, ir
from growdsl.compile import compile_graph
from growdsl.run.config import build_optimizer, train_config
from growdsl.run.execution import Execution
from growdsl.run.loop import TrainState, train_epoch
from growdsl.run.precision import autocast, make_scaler
from growdsl.run.progress import TrainingProgress

SPEC = Path(__file__).parent / "specs" / "resnet20_cifar.grow"
SHAPE, CLASSES = (3, 32, 32), 10


class Basic(nn.Module):
    """He et al.'s basic block; with `stride` 2, a 1x1 stride-2 projection shortcut."""

    def __init__(self, cin: int, c: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False), nn.BatchNorm2d(c))
            if stride != 1
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class HandResNet20(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for c in (16, 32, 64):
            for i in range(3):
                blocks.append(Basic(cin, c, 2 if i == 0 and c != 16 else 1))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.relu(self.bn(self.stem(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def same_weights(grown: nn.Module, hand: nn.Module, device: torch.device) -> None:
    """Copy growdsl's weights into the hand net (same order) and check the two compute the same."""
    pairs = list(zip(hand.state_dict(), grown.state_dict().values(), strict=True))
    assert all(hand.state_dict()[k].shape == v.shape for k, v in pairs)
    hand.load_state_dict(dict(pairs))
    x = torch.randn(4, *SHAPE, device=device)
    grown.eval(), hand.eval()
    torch.testing.assert_close(grown(x), hand(x))
    grown.train(), hand.train()


class HandLoop:
    """The loop a PyTorch user writes: permute, slice, autocast, backward, step."""

    def __init__(self, net: nn.Module, config, device: torch.device) -> None:
        self.net = net
        if config.memory_format == "channels_last":
            net.to(memory_format=torch.channels_last)
        self.forward = torch.compile(net, backend=config.compile) if config.compile else net
        self.opt = build_optimizer(config.optimizer, net.parameters())
        self.scaler = make_scaler(config.precision, device)
        self.config, self.device = config, device
        self.shuffle = torch.Generator().manual_seed(1)

    def epoch(self, x: torch.Tensor, y: torch.Tensor) -> float:
        total = torch.zeros((), device=self.device)
        for idx in torch.randperm(len(x), generator=self.shuffle).to(self.device).split(self.config.batch):
            xb = x[idx]
            if self.config.memory_format == "channels_last":
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast(self.config.precision, self.device):
                loss = F.cross_entropy(self.forward(xb).float(), y[idx])
            self.opt.zero_grad(set_to_none=True)
            if self.scaler is None:
                loss.backward()
                self.opt.step()
            else:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.opt)
                self.scaler.update()
            total += loss.detach() * len(idx)
        return total.item() / len(x)


def timed(sync, run) -> float:
    sync()
    start = time.perf_counter()
    run()
    sync()
    return time.perf_counter() - start


def measure(setting: dict, args, device: torch.device) -> dict:
    """Best-epoch images/s of growdsl's loop and the hand loop at one precision / compile setting."""
    spec = api.load(SPEC)
    config = dataclasses.replace(train_config(spec.train), batch=args.batch, **setting)
    graph = ir.lower(spec, SHAPE, CLASSES)
    torch.manual_seed(0)
    model = compile_graph(graph).to(device)
    hand = HandResNet20().to(device)
    same_weights(model, hand, device)
    optimizer = build_optimizer(config.optimizer, model.parameters())
    state = TrainState(graph, model, optimizer, None, torch.Generator().manual_seed(1))
    state.scaler = make_scaler(config.precision, device)
    execution = Execution(config, device)
    execution.check()
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(args.images, *SHAPE, generator=gen).to(device)
    y = torch.randint(CLASSES, (args.images,), generator=gen).to(device)
    progress = TrainingProgress(False, 1, 1)
    hand_loop = HandLoop(hand, config, device)
    loops = {
        "growdsl": lambda: train_epoch(state, (x, y), config, progress, execution),
        "hand": lambda: hand_loop.epoch(x, y),
    }
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    warm = {name: timed(sync, run) for name, run in loops.items()}  # compiles, if compiling
    best = {name: float("inf") for name in loops}
    for r in range(args.rounds):
        for name in ("growdsl", "hand") if r % 2 == 0 else ("hand", "growdsl"):
            best[name] = min(best[name], timed(sync, loops[name]))
    return {
        "growdsl": args.images / best["growdsl"],
        "hand": args.images / best["hand"],
        "ratio": best["hand"] / best["growdsl"],
        "warm_up_s": warm["growdsl"],
        "compiles": execution.compiles,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=10240, help="generated training images an epoch")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    parser.add_argument(
        "--compile", nargs="+", default=["none"], help="none, or torch.compile backends (inductor, aot_eager)"
    )
    parser.add_argument(
        "--memory-formats", nargs="+", default=["contiguous"], choices=["contiguous", "channels_last"]
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"# ResNet-20 (benchmarks/specs/resnet20_cifar.grow) on {args.images} generated [3, 32, 32] images")
    print(f"# torch {torch.__version__}, {where}, batch {args.batch}, best of {args.rounds} epochs")
    print("| precision | compile | memory format | growdsl img/s | hand img/s | growdsl / hand | warm-up s |")
    print("|---|---|---|---|---|---|---|")
    results = {}
    for layout in args.memory_formats:
        for backend in args.compile:
            for precision in args.precisions:
                compiled = None if backend == "none" else backend
                setting = {"precision": precision, "compile": compiled, "memory_format": layout}
                m = measure(setting, args, device)
                results[precision, backend, layout] = m
                print(
                    f"| {precision} | {backend} | {layout} | {m['growdsl']:,.0f} | {m['hand']:,.0f} "
                    f"| {m['ratio']:.3f} | {m['warm_up_s']:.1f} |",
                    flush=True,
                )
    for (precision, backend, layout), m in results.items():
        base = results.get(("fp32", backend, layout))
        if precision != "fp32" and base is not None:
            speedup = m["growdsl"] / base["growdsl"]
            verdict = "meets" if speedup >= 1.5 else "misses"
            print(f"# {precision} / fp32 ({backend}, {layout}): {speedup:.2f}x ({verdict} the 1.5x goal)")
        plain = results.get((precision, backend, "contiguous"))
        if layout == "channels_last" and plain is not None:
            gain = m["growdsl"] / plain["growdsl"]
            print(f"# channels_last / contiguous ({precision}, {backend}): {gain:.2f}x")
    worst = min(m["ratio"] for m in results.values())
    verdict = "meets" if worst >= 0.95 else "misses"
    print(f"# lowest growdsl / hand ratio: {worst:.3f} ({verdict} the 0.95 goal)")


if __name__ == "__main__":
    main()
