"""`TrainConfig`: the `train { ... }` block, validated, with defaults for what it leaves out.

Defaults (used when the block or a setting is absent): `epochs 10`, `batch 64`,
`optimizer adam(lr: 1e-3)` (a learning rate that works without tuning on the small tasks growdsl
starts from), `schedule none`, `loss cross_entropy` (`mse` for a regression data set such as
`wave`), `seed 0`, `device auto` (cuda when available, else cpu), `precision fp32`, `compile
false`, `memory_format contiguous` (how the net runs: growdsl/run/execution.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from growdsl.errors import RunError, Span, SpecError
from growdsl.lang.ast import Call, Name, Setting, Str, TrainBlock, Value
from growdsl.lang.suggest import unknown_name_message
from growdsl.lazy import torch
from growdsl.options import (
    Option,
    boolean,
    increasing_fractions,
    integer,
    number,
    number_list,
    read_options,
    read_value,
)

SETTINGS = (
    "epochs",
    "batch",
    "optimizer",
    "schedule",
    "loss",
    "seed",
    "device",
    "on_divergence",
    "precision",
    "compile",
    "memory_format",
    "max_params",
)
# The largest net `check` lets a run build by default: 10^9 float32 parameters are 4 GB of weights,
# 16 GB with their gradients and Adam's two moments; `max_params` in the train block raises it.
MAX_PARAMS = 10**9
LOSSES = ("cross_entropy", "mse")
PRECISIONS = ("fp32", "bf16", "fp16")
# `compile true` is torch.compile's default backend; the others trace the net the same way but
# generate no code (aot_eager runs the traced forward and backward graphs eagerly): for a machine
# without a C++ compiler, and for tests, where inductor's code generation takes tens of seconds
COMPILE_BACKENDS = ("inductor", "aot_eager", "eager")
MEMORY_FORMATS = ("contiguous", "channels_last")

_LR = number(0.0, lo_open=True)
_DECAY = number(0.0)
_BETAS = number_list(2, 0.0, 1.0, hi_open=True)
_EPS = number(0.0, lo_open=True)

OPTIMIZERS: dict[str, dict[str, Option]] = {
    "sgd": {
        "lr": Option(0.01, _LR),
        "momentum": Option(0.0, number(0.0, 1.0, hi_open=True)),
        "dampening": Option(0.0, number(0.0, 1.0)),
        "weight_decay": Option(0.0, _DECAY),
        "nesterov": Option(False, boolean),
    },
    "adam": {
        "lr": Option(1e-3, _LR),
        "betas": Option([0.9, 0.999], _BETAS),
        "eps": Option(1e-8, _EPS),
        "weight_decay": Option(0.0, _DECAY),
        "amsgrad": Option(False, boolean),
    },
    "adamw": {
        "lr": Option(1e-3, _LR),
        "betas": Option([0.9, 0.999], _BETAS),
        "eps": Option(1e-8, _EPS),
        "weight_decay": Option(0.01, _DECAY),
        "amsgrad": Option(False, boolean),
    },
}

SCHEDULES: dict[str, dict[str, Option]] = {
    "none": {},
    "cosine": {"min_lr": Option(0.0, number(0.0))},  # anneals over the run's epochs
    "step": {"every": Option(10, integer(1)), "gamma": Option(0.1, number(0.0, 1.0, lo_open=True))},
    # the papers' decays at fixed points of the run (He et al.: at 50 % and 75 %); fractions, so a
    # schedule restarted after growth decays at the same points of the epochs left
    "multistep": {
        "at": Option([0.5, 0.75], increasing_fractions),
        "gamma": Option(0.1, number(0.0, 1.0, lo_open=True)),
    },
}

ON_DIVERGENCE: dict[str, dict[str, Option]] = {
    "stop": {},
    "rollback": {
        "retries": Option(3, integer(1, 100)),  # rollbacks over the whole run (a member's life)
        "factor": Option(0.1, number(0.0, 1.0, lo_open=True, hi_open=True)),  # lr times this, each
    },
}

_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


@dataclass(frozen=True)
class Method:
    """A named method with its keyword arguments: `sgd(lr: 0.1)`, `step(every: 10)`."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch: int = 64
    optimizer: Method = Method("adam", {k: o.default for k, o in OPTIMIZERS["adam"].items()})
    schedule: Method = Method("none")
    loss: str = "cross_entropy"
    seed: int = 0
    device: str = "auto"
    on_divergence: Method = Method("stop")
    precision: str = "fp32"
    compile: str | None = None  # the torch.compile backend, None for an uncompiled net
    memory_format: str = "contiguous"
    max_params: int = MAX_PARAMS


def train_setting_names() -> tuple[str, ...]:
    """The settings a `train` block (and `--set train.NAME=...`) may give."""
    return SETTINGS


def check_setting_name(name: str, span: Span | None = None) -> None:
    """SpecError with a did-you-mean for a name that is not a train setting."""
    if name not in SETTINGS:
        raise SpecError(unknown_name_message("train setting", name, SETTINGS), span)


def _as_call(value: Value, what: str, known: dict[str, dict[str, Option]]) -> Call:
    """A bare name (`adam`, `cosine`) is the call without arguments."""
    if isinstance(value, Name):
        value = Call(value.id, (), value.span)
    if not isinstance(value, Call):
        raise SpecError(f"bad value for {what}", value.span, expected="one of " + ", ".join(known))
    if value.name not in known:
        raise SpecError(unknown_name_message(what, value.name, known), value.span)
    return value


def _method(value: Value, what: str, known: dict[str, dict[str, Option]]) -> Method:
    call = _as_call(value, what, known)
    kwargs = read_options(call, known[call.name], f"{call.name} option")
    if call.name == "sgd" and kwargs["nesterov"] and (kwargs["momentum"] <= 0 or kwargs["dampening"] != 0):
        raise SpecError(
            "nesterov needs momentum > 0 and dampening 0",
            call.span,
            expected="sgd(lr: 0.1, momentum: 0.9, nesterov: true)",
        )
    return Method(call.name, kwargs)


def _name(value: Value, what: str, known: tuple[str, ...]) -> str:
    if not isinstance(value, (Name, Call)) or (isinstance(value, Call) and value.args):
        raise SpecError(f"bad value for {what}", value.span, expected="one of " + ", ".join(known))
    name = value.id if isinstance(value, Name) else value.name
    if name not in known:
        raise SpecError(unknown_name_message(what, name, known), value.span)
    return name


def _device(value: Value) -> str:
    text = value.value if isinstance(value, Str) else value.id if isinstance(value, Name) else None
    if text is None or not _DEVICE.match(text):
        raise SpecError(
            "bad value for train setting 'device'", value.span, expected="auto, cpu, cuda or cuda:N"
        )
    return text


def _compile(value: Value) -> str | None:
    """`true` (inductor), `false`, or a backend by name."""
    known = ("true", "false", *COMPILE_BACKENDS)
    name = _name(value, "compile backend", known)
    return {"true": "inductor", "false": None}.get(name, name)


def _read(setting: Setting, regression: bool) -> Any:
    name, value = setting.name, setting.value
    if name == "epochs":
        return read_value(value, integer(1), "train setting 'epochs'")
    if name == "batch":
        return read_value(value, integer(1), "train setting 'batch'")
    if name == "max_params":
        return read_value(value, integer(1), "train setting 'max_params'")
    if name == "seed":
        return read_value(value, integer(0, 2**32 - 1), "train setting 'seed'")
    if name == "optimizer":
        return _method(value, "optimizer", OPTIMIZERS)
    if name == "schedule":
        return _method(value, "schedule", SCHEDULES)
    if name == "on_divergence":
        return _method(value, "on_divergence", ON_DIVERGENCE)
    if name == "precision":
        return _name(value, "precision", PRECISIONS)
    if name == "compile":
        return _compile(value)
    if name == "memory_format":
        return _name(value, "memory_format", MEMORY_FORMATS)
    if name == "loss":
        loss = _name(value, "loss", LOSSES)
        if regression and loss == "cross_entropy":
            raise SpecError(
                "loss cross_entropy needs classes, but this data set is a regression task",
                value.span,
                expected="loss mse",
            )
        return loss
    return _device(value)


def train_config(block: TrainBlock | None, *, regression: bool = False) -> TrainConfig:
    """Validate a `train` block into a TrainConfig; `regression` (a data set without classes)
    makes `mse` the default loss and `cross_entropy` an error."""
    values: dict[str, Any] = {"loss": "mse"} if regression else {}
    seen: set[str] = set()
    for setting in block.settings if block else ():
        check_setting_name(setting.name, setting.span)
        if setting.name in seen:
            raise SpecError(f"train setting '{setting.name}' is given twice", setting.span)
        seen.add(setting.name)
        values[setting.name] = _read(setting, regression)
    return TrainConfig(**values)


def check_loss(
    block: TrainBlock | None, classes: int | None, output: tuple[int, ...], model_span: Span | None
) -> None:
    """Raise a SpecError, at the `loss` setting (else at the model), when the model's output shape
    cannot feed the loss on this data set's targets (`growdsl.run.loop.compute_loss`):

    | data set | loss | the output must be |
    | --- | --- | --- |
    | classes | cross_entropy | one logit per class: `[N]` with N >= classes |
    | classes | mse | the one-hot target: `[classes]` |
    | regression (one number a row) | mse | one number: `[1]` |
    """
    loss = train_config(block, regression=classes is None).loss
    setting = next((s for s in block.settings if s.name == "loss"), None) if block else None
    span = setting.value.span if setting is not None else model_span
    shown = list(output)
    if classes is None:
        fits, needs = output == (1,), "one output, [1], for its one target number"
    elif loss == "cross_entropy":
        fits, needs = len(output) == 1 and output[0] >= classes, f"one logit per class, [{classes}]"
    else:
        fits, needs = output == (classes,), f"one output per class, [{classes}], for the one-hot targets"
    if not fits:
        where = "" if setting is not None else " (the default loss)"
        raise SpecError(
            f"loss {loss}{where} does not fit the model's output {shown}: it needs {needs}",
            span,
            hint="end the model with linear(classes)"
            if classes is not None
            else "end the model with linear(1)",
        )


def check_size(block: TrainBlock | None, params: int, span: Span | None) -> None:
    """A SpecError at the model (`span`) when the net as it starts has more parameters than
    `max_params` allows: a model that cannot be allocated is refused by `check`, not by the
    allocator after the run has started."""
    bound = train_config(block).max_params if block else MAX_PARAMS
    if params > bound:
        given = any(s.name == "max_params" for s in block.settings) if block else False
        raise SpecError(
            f"the model has {params:,} parameters, more than max_params allows ({bound:,}"
            f"{'' if given else ', the default'}): {params * 4 / 1e9:,.1f} GB of float32 weights alone",
            span,
            hint="make the model smaller, or, if the machine has the memory, raise the bound: "
            "`max_params N` in the train block (or --set train.max_params=N)",
        )


def check_on_divergence(block: TrainBlock | None, tasks: bool) -> None:
    """A task sequence (continual learning) can only stop on a divergence: its tasks' freezes and
    heads are not rolled back. A SpecError at the setting."""
    setting = next((s for s in block.settings if s.name == "on_divergence"), None) if block else None
    if tasks and setting is not None and train_config(block).on_divergence.name == "rollback":
        raise SpecError(
            "on_divergence rollback is not supported with a task sequence (data ... tasks: ...)",
            setting.value.span,
            expected="on_divergence stop",
        )


def check_memory_format(block: TrainBlock | None, input_shape: tuple[int, ...]) -> None:
    """`memory_format channels_last` lays out images (N, C, H, W) channel-last; it needs image
    input. A SpecError at the setting otherwise."""
    setting = next((s for s in block.settings if s.name == "memory_format"), None) if block else None
    if setting is not None and train_config(block).memory_format == "channels_last" and len(input_shape) != 3:
        raise SpecError(
            f"memory_format channels_last needs image input [C, H, W], but this data set's input is "
            f"{list(input_shape)}",
            setting.value.span,
            expected="memory_format contiguous",
        )


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; an unavailable cuda device is a RunError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not _DEVICE.match(name):
        raise RunError(f"unknown device '{name}' (expected auto, cpu, cuda or cuda:N)")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RunError(
                f"device '{name}' was asked for, but CUDA is not available on this machine; "
                "use device cpu or auto"
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise RunError(
                f"device '{name}' does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    return torch.device(name)


def build_optimizer(method: Method, params: Any) -> torch.optim.Optimizer:
    """The torch optimizer of a validated `optimizer` setting."""
    kwargs = dict(method.kwargs)
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[method.name]
    return cls(params, **kwargs)


def build_schedule(
    method: Method, optimizer: torch.optim.Optimizer, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-epoch learning-rate schedule, or None for `schedule none`."""
    if method.name == "cosine":
        min_lr = method.kwargs["min_lr"]
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=min_lr)
    if method.name == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=method.kwargs["every"], gamma=method.kwargs["gamma"]
        )
    if method.name == "multistep":
        milestones = sorted({max(1, round(f * epochs)) for f in method.kwargs["at"]})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=method.kwargs["gamma"])
    return None
