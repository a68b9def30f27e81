"""How the training loop runs a net on its device: precision, memory format and `torch.compile`.

Three `train` settings say it (docs/language.md, "Training"); none changes what is computed, only
how fast and in which floating-point precision:

- `precision fp32 | bf16 | fp16`: autocast around the forward pass and the loss, evaluation
  included (growdsl/run/precision.py); fp16 with a gradient scaler.
- `memory_format contiguous | channels_last`: channels_last stores the images and the convolution
  weights as (N, H, W, C), the layout the GPU's tensor cores (and oneDNN on the CPU) prefer. The
  weights are converted in place (the same `Parameter` objects, so the optimizer keeps them), each
  time the net is new: at the start and after a growth step, whose new weights come out contiguous.
- `compile true` (or a backend by name): the training forward runs through `torch.compile`. A
  growth step replaces the net, so the next training batch compiles the new one, after clearing
  torch's compile caches (a run that grows many times would otherwise reach dynamo's limit of
  compiled versions and fall back to running uncompiled, silently). Only full training batches
  run compiled: an epoch's shorter last batch and evaluation (eval mode) run the same module
  uncompiled, so one compile serves a net's whole life between growth steps. What a compile costs
  against a step and an epoch, and when it pays: docs/benchmarks.md, "Compile and precision".

The weights are always the plain module's (`TrainState.model`), never the compiled wrapper's: a
checkpoint, a growth step and an export see the same names with or without `compile`.
"""

from __future__ import annotations

import contextlib
import shutil
from typing import Any

from growdsl.errors import RunError
from growdsl.lazy import nn, torch
from growdsl.run import precision as amp
from growdsl.run.config import TrainConfig


class Execution:
    """One run's way of running its nets: built from the `train` settings and the device."""

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        self.precision = config.precision
        self.channels_last = config.memory_format == "channels_last"
        self.backend = config.compile
        self.batch = config.batch
        self.device = device
        self.compiles = 0  # how many nets were compiled (one at the start, one per growth step)
        self._model: nn.Module | None = None
        self._compiled: Any = None

    def check(self) -> None:
        """A RunError when the device cannot run these settings; before anything trains."""
        amp.check_precision(self.precision, self.device)
        if self.backend == "inductor":
            _check_inductor(self.device)

    def autocast(self) -> contextlib.AbstractContextManager:
        return amp.autocast(self.precision, self.device)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """A batch laid out as the net expects it."""
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def prepare(self, model: nn.Module) -> nn.Module:
        """The net in the memory format asked for (in place); returns it."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def training_forward(self, model: nn.Module) -> Any:
        """What to call for a training batch of `model`: the module, or its compiled form when
        `compile` is set (compiled once per net: the first call after a growth step compiles)."""
        if model is not self._model:
            self._model = self.prepare(model)
            self._compiled = None
            if self.backend is not None:
                torch._dynamo.reset()  # the previous net's versions: see the module docstring
                self._compiled = torch.compile(model, backend=self.backend)
                self.compiles += 1
        return model if self._compiled is None else self._compiled

    def forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The outputs of a training batch, compiled when it is a full batch."""
        run = self.training_forward(model)
        if len(x) != self.batch:
            run = model
        try:
            return run(self.inputs(x))
        except torch._dynamo.exc.BackendCompilerFailed as e:
            raise RunError(
                f"torch.compile (backend {self.backend}) could not compile the net on {self.device}: "
                f"{str(e).splitlines()[0]}; train without `compile`, or with `compile aot_eager`"
            ) from e


def _check_inductor(device: torch.device) -> None:
    """Inductor generates C++ on the CPU and Triton kernels on CUDA; without the tool it fails
    only at the first batch, deep inside torch. Say so before training starts."""
    if device.type == "cpu" and not any(shutil.which(cxx) for cxx in ("g++", "c++", "clang++")):
        raise RunError(
            "compile true needs a C++ compiler on the CPU (torch.compile's inductor backend "
            "generates C++); install g++, or use compile aot_eager (traced, no code generation)"
        )
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            raise RunError(
                "compile true needs Triton on CUDA (torch.compile's inductor backend); "
                "pip install triton, or use compile aot_eager"
            )
