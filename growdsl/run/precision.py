"""Training precision (`train { precision fp32 | bf16 | fp16 }`): autocast and the gradient scaler.

Mixed precision here is `torch.autocast` around the forward pass and the loss: the weights, their
gradients and the optimizer's state stay fp32, and autocast runs each op in the lower precision
where that is safe (matrix products, convolutions) and in fp32 where it is not (softmax, losses,
reductions). What that means, exactly:

| precision | forward | weights, gradients, optimizer | gradient scaler |
| --- | --- | --- | --- |
| `fp32` | fp32 | fp32 | none |
| `bf16` | autocast to bfloat16 | fp32 | none: bf16 has fp32's exponent range |
| `fp16` | autocast to float16 | fp32 | `torch.amp.GradScaler`, its state checkpointed |

fp16's gradients underflow without a scaler: the loss is multiplied by a large factor before the
backward pass, the gradients divided by it before the step, and a step whose gradients overflowed
is skipped and the factor halved. The factor changes as the run goes, so it is part of the
training state (`TrainState.scaler`) and of the checkpoint: a resumed run scales exactly as an
uninterrupted one.

Growth statistics never run under autocast: the growth step turns it off (growdsl/grow/step.py),
so splitting matrices, eigenpairs, firefly's and path-level scores and `delta_out` are fp32
whatever the training precision.
"""

from __future__ import annotations

import contextlib
from typing import Any

from growdsl.errors import RunError
from growdsl.lazy import torch


def dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision; None for fp32 (no autocast)."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def check_precision(precision: str, device: torch.device) -> None:
    """A RunError when `device` cannot train at `precision`. The CPU autocasts to both bfloat16 and
    float16 (slowly where the processor has no instructions for them, but correctly); a CUDA card
    older than Ampere has no bfloat16 (`torch.cuda.is_bf16_supported`)."""
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(device)
        raise RunError(
            f"precision bf16 was asked for, but {name} cannot compute in bfloat16; "
            "use precision fp16 (with its gradient scaler) or fp32"
        )


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context the forward pass and the loss run in: autocast to the precision's dtype, or
    nothing for fp32."""
    low = dtype(precision)
    if low is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=low)


def make_scaler(precision: str, device: torch.device, state: dict[str, Any] | None = None) -> Any:
    """The gradient scaler of an fp16 run (restored from a checkpoint's `state` when given); None
    for the other precisions, which need none."""
    if precision != "fp16":
        return None
    scaler = torch.amp.GradScaler(device.type)
    if state is not None:
        scaler.load_state_dict(state)
    return scaler


def backward_and_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: Any | None) -> None:
    """Backward pass and optimizer step, through the scaler when there is one (fp16): scaled loss,
    unscaled gradients, a step skipped when they are not finite, the scale updated."""
    if scaler is None:
        loss.backward()
        optimizer.step()
        return
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
