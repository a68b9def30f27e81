"""Communication in a growth step on several processes: its share of the step and the bytes moved.

One growth step (`grow_step`: propose, decide, apply, checksum) of each transform on an MLP on
digits, flatten -> linear(W) tanh -> linear(W) tanh -> linear(10) (path-level: the second layer
is a cell, linear(W) tanh then a linear added to an identity path, whose identity the step may
replace), from the same seeded, untrained weights,
on 1 process and on `--nproc` processes of torch's launcher (docs/distributed.md). On the ranks,
every collective goes through `growdsl/grow/collective.py`, which counts the seconds spent in
it (waiting for the slower rank included) and the bytes this rank hands to it; rank 0's figures
are reported. Each step is timed `--repeats` times from the same state and the fastest kept
(noise on a shared machine only adds time).

    python benchmarks/ddp_growth.py [--nproc 2] [--backend gloo|nccl] [--width 256]
        [--repeats 3] [--transforms split firefly pathlevel] [--json FILE]

`--backend nccl` puts rank r on GPU r (needs `--nproc` GPUs); gloo runs on the CPU. Each process
uses `OMP_NUM_THREADS` threads (default 1): on the CPU, 1 process then computes on one core and
N processes on N, the comparison data parallelism is about (two threads in one process against
two processes on a loaded machine also measured thread contention, many times the step).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from growdsl.grow import collective
from growdsl.grow.policy import GrowthPolicy
from growdsl.grow.step import grow_step
from growdsl.ir import lower, param_count
from growdsl.lang import parse_text
from growdsl.run import distributed
from growdsl.run.config import build_optimizer, build_schedule, train_config
from growdsl.run.datasets import describe, load_data
from growdsl.run.loop import compute_loss
from growdsl.run.member import initial_payload, state_from_payload

MLP = "flatten linear({w}..{w4}) tanh linear({w}..{w4}) tanh linear(classes)"
CELL = "flatten linear({w}..{w4}) tanh cell({w}) as c1 linear(classes)"  # path-level acts on cells
TRANSFORMS = {  # transform: (model, grow block)
    "split": (MLP, "split(frac: 0.25, eps: 0.01, method: fast)"),
    "firefly": (MLP, "firefly(wider: 16, candidates: 16, eps: 0.01, frac: 0.25)"),
    "pathlevel": (CELL, "pathlevel(on: [c1], ops: [replace], steps: 5)"),
}
SPEC = """
data digits(test: 0.2)
block cell(c) {{ linear(c) tanh branch add {{ linear(c) | identity }} }}
model mlp {{ {model} }}
train {{ epochs 10 batch 64 optimizer sgd(lr: 0.05, momentum: 0.9) seed 0 device {device} }}
grow {{ every 1 epochs
 {grow} }}
"""


def step_cost(transform: str, width: int, device: str, repeats: int) -> dict:
    """The fastest of `repeats` growth steps from the same state: seconds, seconds in collectives,
    bytes handed to them, params before and after."""
    model, grow = TRANSFORMS[transform]
    model = model.format(w=width, w4=4 * width)
    spec = parse_text(SPEC.format(model=model, device=device, grow=grow), "b.grow")
    info = describe(spec.data)
    config = train_config(spec.train, regression=False)
    graph = lower(spec, info.input_shape, info.classes)
    data = load_data(spec.data, config.seed)
    dev = torch.device(device)
    train = (data.train[0].to(dev), data.train[1].to(dev))
    payload = initial_payload(graph, config, config.seed, config.epochs)
    policy = GrowthPolicy.from_block(spec.grow).for_run(config.epochs)
    best = None
    for _ in range(repeats):
        state = state_from_payload(payload, config, dev, config.epochs)
        state.epoch = 1
        rng = torch.Generator().manual_seed(1)
        if collective.active():
            torch.distributed.barrier()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        with collective.counted() as moved:
            start = time.perf_counter()
            grow_step(
                state, policy, train, rng,
                loss_fn=lambda out, y: compute_loss(config.loss, out, y),
                make_optimizer=lambda params: build_optimizer(config.optimizer, params),
                make_schedule=lambda opt, n: build_schedule(config.schedule, opt, n),
                last_epoch=config.epochs,
            )  # fmt: skip
            if dev.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
        if best is None or seconds < best["step_s"]:
            best = {
                "step_s": seconds,
                "comm_s": moved.seconds,
                "comm_share": moved.seconds / seconds,
                "bytes": moved.bytes,
                "collectives": moved.calls,
                "params_before": param_count(graph),
                "params_after": param_count(state.graph),
            }
    return best


def worker(args: argparse.Namespace) -> None:
    """One rank (or the only process): every transform's step cost; rank 0 writes them to --json."""
    device = torch.device("cuda", 0) if args.backend == "nccl" else torch.device("cpu")
    if distributed.launched():
        device = distributed.start(device)  # the process group, as a run joins it (rank r on GPU r)
    results = {t: step_cost(t, args.width, str(device), args.repeats) for t in args.transforms}
    if collective.rank() == 0:
        Path(args.json).write_text(json.dumps(results))
    distributed.stop()


def measure(nproc: int, args: argparse.Namespace) -> dict:
    """Run the workers on `nproc` processes (through torch's launcher when more than one)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        common = ["--worker", "--json", str(out), "--backend", args.backend, "--width", str(args.width),
                  "--repeats", str(args.repeats), "--transforms", *args.transforms]  # fmt: skip
        if nproc == 1:
            command = [sys.executable, __file__, *common]
        else:
            command = distributed.launcher_command(nproc, __file__, *common)
        threads = os.environ.get("OMP_NUM_THREADS", "1")  # per process: 1 process uses 1 core, N use N
        subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": threads})
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--backend", choices=["gloo", "nccl"], default="gloo")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--transforms", nargs="+", choices=sorted(TRANSFORMS), default=sorted(TRANSFORMS))
    parser.add_argument("--json", help="write the figures here as JSON (a worker: its results)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    one, many = measure(1, args), measure(args.nproc, args)
    machine = platform.processor() or platform.machine()
    print(f"# {machine}, torch {torch.__version__}, backend {args.backend}, width {args.width}, "
          f"fastest of {args.repeats}")  # fmt: skip
    print(f"| transform | step, 1 proc (s) | step, {args.nproc} procs (s) | in collectives (s) | share | "
          "bytes per rank | collectives | params |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for t in args.transforms:
        a, b = one[t], many[t]
        size = f"{b['params_before']:,} -> {b['params_after']:,}"
        print(f"| {t} | {a['step_s']:.3f} | {b['step_s']:.3f} | {b['comm_s']:.3f} | {b['comm_share']:.1%} | "
              f"{b['bytes']:,} | {b['collectives']} | {size} |")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"one": one, str(args.nproc): many}, indent=1))


if __name__ == "__main__":
    main()
