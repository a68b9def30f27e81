"""What `train { compile true }` costs: a compile and a recompile after growth, against a step and an epoch.

The question (issue #18): a growth step replaces the net, so a compiled run compiles again after
every step; when does compiling pay? Measured with growdsl's own loop
(`growdsl.run.loop.train_epoch` with `growdsl.run.execution.Execution`) on a spec with a `grow`
block and its data:

1. the first compiled epoch (it compiles the net) and a second one (steady state);
2. one growth step through the spec's growth policy (the net changes), then the first epoch
   after it (it compiles the grown net) and a second one;
3. the same epochs uncompiled, on a copy of the same net (same weights, same batches).

A compile's cost is the first epoch's time minus the steady epoch's, given in seconds, in steady
steps and in epochs; compiling pays after (compile cost) / (uncompiled epoch - compiled epoch)
epochs between two growth steps, when compiled epochs are faster at all.

    python benchmarks/compile_cost.py [--spec specs/split_cnn.grow] [--backend inductor] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import platform
import time

import torch

from growdsl import api, ir
from growdsl.grow.policy import GrowthPolicy
from growdsl.run import datasets
from growdsl.run.config import train_config
from growdsl.run.execution import Execution
from growdsl.run.loop import steps_per_epoch, to_device, train_epoch
from growdsl.run.member import growth_hooks, initial_payload, state_from_payload
from growdsl.run.progress import TrainingProgress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="specs/split_cnn.grow")
    parser.add_argument("--backend", default="inductor")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    spec = api.load(args.spec)
    info = datasets.describe(spec.data)
    config = train_config(spec.train, regression=info.classes is None)
    graph = ir.lower(spec, info.input_shape, info.classes)
    data = to_device(datasets.load_data(spec.data, config.seed), device)
    payload = initial_payload(graph, config, config.seed, config.epochs)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    progress = TrainingProgress(False, 1, 1)
    (grow,) = growth_hooks(spec.grow, data, config)
    schedule = GrowthPolicy.from_block(spec.grow).schedule.for_run(config.epochs)
    due = next(e for e in range(1, config.epochs) if schedule.due(e, []))

    def epochs(backend: str | None) -> list[float]:
        """Seconds of 2 epochs, a growth step, 2 epochs, with `compile backend` (None: uncompiled)."""
        settings = dataclasses.replace(config, compile=backend)
        state = state_from_payload(copy.deepcopy(payload), settings, device, config.epochs)
        execution = Execution(settings, device)
        execution.check()
        seconds = []
        for i in range(4):
            if i == 2:
                state.epoch = due  # the first epoch the schedule grows at
                grow(state, {})
                assert any(r["event"] == "grow" for r in state.history), "the growth step grew nothing"
            sync()
            start = time.perf_counter()
            train_epoch(state, data.train, settings, progress, execution)
            sync()
            seconds.append(time.perf_counter() - start)
        return seconds

    eager = epochs(None)
    compiled = epochs(args.backend)
    steps = steps_per_epoch(len(data.train[0]), config.batch)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"# {args.spec}: {steps} steps an epoch (batch {config.batch}), torch {torch.__version__}, {where}")
    print(f"# compile backend {args.backend}; epoch seconds: uncompiled {eager}, compiled {compiled}")
    print("| net | compile s | steady compiled epoch s | uncompiled epoch s | compile in steps | "
          "compile in epochs | pays after epochs |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, first, steady, plain in (
        ("initial", compiled[0], compiled[1], eager[1]),
        ("after a growth step", compiled[2], compiled[3], eager[3]),
    ):
        cost = first - steady
        gain = plain - steady
        pays = f"{cost / gain:.1f}" if gain > 0 else "never (compiled epochs are not faster)"
        print(
            f"| {name} | {cost:.2f} | {steady:.3f} | {plain:.3f} | {cost / (steady / steps):.0f} "
            f"| {cost / steady:.1f} | {pays} |"
        )


if __name__ == "__main__":
    main()
