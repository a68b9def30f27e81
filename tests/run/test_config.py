"""`train { ... }` validation: defaults, every error at its span, devices, optimizers, schedules."""

from __future__ import annotations

import pytest
import torch

from growdsl.errors import RunError, SpecError
from growdsl.lang import parse_text
from growdsl.run.config import (
    TrainConfig,
    build_optimizer,
    build_schedule,
    check_setting_name,
    resolve_device,
    train_config,
    train_setting_names,
)


def config_of(body: str, **kw) -> TrainConfig:
    spec = parse_text(f"model m {{ flatten linear(classes) }}\ntrain {{ {body} }}\n", "c.grow")
    return train_config(spec.train, **kw)


def error_of(body: str, **kw) -> SpecError:
    with pytest.raises(SpecError) as info:
        config_of(body, **kw)
    return info.value


def test_absent_block_gives_the_documented_defaults():
    config = train_config(None)
    assert (config.epochs, config.batch, config.loss, config.seed, config.device) == (
        10,
        64,
        "cross_entropy",
        0,
        "auto",
    )
    assert config.optimizer.name == "adam" and config.optimizer.kwargs["lr"] == 1e-3
    assert config.schedule.name == "none" and config.on_divergence.name == "stop"


def test_regression_data_defaults_to_mse_and_refuses_cross_entropy():
    assert train_config(None, regression=True).loss == "mse"
    assert "needs classes" in str(error_of("loss cross_entropy", regression=True))


def test_settings_are_read_with_their_values():
    config = config_of(
        "epochs 4 batch 2k optimizer sgd(lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 5e-4) "
        "schedule step(every: 3, gamma: 0.5) loss mse seed 11 device cpu"
    )
    assert (config.epochs, config.batch, config.loss, config.seed, config.device) == (
        4,
        2000,
        "mse",
        11,
        "cpu",
    )
    assert config.optimizer.kwargs == {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 5e-4,
                                       "nesterov": True}  # fmt: skip
    assert config.schedule.kwargs == {"every": 3, "gamma": 0.5}


def test_bare_method_names_are_calls_without_arguments():
    config = config_of("optimizer adamw schedule cosine")
    assert config.optimizer.name == "adamw" and config.optimizer.kwargs["weight_decay"] == 0.01
    assert config.schedule.name == "cosine"


def test_device_accepts_a_quoted_cuda_index():
    assert config_of('device "cuda:1"').device == "cuda:1"


@pytest.mark.parametrize(
    "body, message, col",
    [
        ("epocs 3", "unknown train setting 'epocs': did you mean 'epochs'?", 9),
        ("epochs 0", "bad value 0 for train setting 'epochs'", 16),
        ("batch 1.5", "bad value 1.5 for train setting 'batch'", 15),
        ("seed -1", "bad value -1 for train setting 'seed'", 14),
        ("optimizer rmsprop", "unknown optimizer 'rmsprop'", 19),
        (
            "optimizer sgd(lr: 0.1, momentun: 0.9)",
            "unknown sgd option 'momentun': did you mean 'momentum'?",
            32,
        ),
        ("optimizer sgd(lr: 0.1, nesterov: true)", "nesterov needs momentum > 0", 19),
        ("optimizer adam(betas: [0.9])", "bad value [0.9] for adam option 'betas'", 31),
        ("optimizer sgd(0.1)", "sgd takes named options only", 23),
        ("schedule cosin", "unknown schedule 'cosin': did you mean 'cosine'?", 18),
        ("schedule step(gamma: 2)", "bad value 2 for step option 'gamma'", 30),
        ("loss hinge", "unknown loss 'hinge'", 14),
        ("device tpu", "bad value for train setting 'device'", 16),
        ('device "cuda:x"', "bad value for train setting 'device'", 16),
    ],
)
def test_bad_setting_is_a_spec_error_at_its_place(body, message, col):
    err = error_of(body)
    assert message in str(err)
    assert (err.span.file, err.span.line, err.span.col) == ("c.grow", 2, col)


def test_setting_names_match_what_the_block_accepts():
    names = train_setting_names()
    assert set(names) == {
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
    }
    check_setting_name("epochs")
    with pytest.raises(SpecError, match="did you mean 'batch'"):
        check_setting_name("bach")


def test_auto_device_is_cpu_without_cuda_and_cpu_is_always_there():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_a_run_error_that_says_so(name):
    with pytest.raises(RunError, match="CUDA is not available"):
        resolve_device(name)


def test_optimizer_and_schedule_are_built_with_the_given_arguments():
    params = [torch.nn.Parameter(torch.zeros(2))]
    config = config_of("optimizer adam(lr: 0.01, betas: [0.8, 0.9]) schedule step(every: 2, gamma: 0.5)")
    opt = build_optimizer(config.optimizer, params)
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["betas"] == (0.8, 0.9)
    sched = build_schedule(config.schedule, opt, epochs=10)
    for _ in range(2):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.005)
    assert build_schedule(config_of("schedule none").schedule, opt, 10) is None


def test_precision_compile_and_memory_format_default_to_plain_fp32_eager_contiguous():
    config = train_config(None)
    assert (config.precision, config.compile, config.memory_format) == ("fp32", None, "contiguous")


@pytest.mark.parametrize(
    "body, expected",
    [
        ("precision bf16 compile true memory_format channels_last", ("bf16", "inductor", "channels_last")),
        ("precision fp16 compile aot_eager", ("fp16", "aot_eager", "contiguous")),
        ("precision fp32 compile false", ("fp32", None, "contiguous")),
    ],
)
def test_precision_compile_and_memory_format_are_read(body, expected):
    config = config_of(body)
    assert (config.precision, config.compile, config.memory_format) == expected


def test_an_unknown_precision_gets_a_did_you_mean():
    assert "did you mean 'fp16'" in str(error_of("precision fp61"))


def _rates(schedule: str, epochs: int) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    sched = build_schedule(config_of(f"schedule {schedule}").schedule, opt, epochs)
    rates = []
    for _ in range(epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def test_multistep_decays_at_fractions_of_the_epochs_it_is_built_for():
    """He et al.'s schedule: the rate /10 at 50 % and 75 % of the run; built again over the epochs
    left (a restart after growth), it decays at the same fractions of those."""
    assert _rates("multistep", 8) == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)
    assert _rates("multistep(at: [0.25], gamma: 0.5)", 4) == pytest.approx([0.1, 0.05, 0.05, 0.05])


@pytest.mark.parametrize("at", ["[0.75, 0.5]", "[0.5, 1.0]", "[]", "[0]", "0.5"])
def test_multistep_points_must_be_increasing_fractions(at):
    error = error_of(f"schedule multistep(at: {at})")
    assert "bad value" in error.message and "increasing numbers in (0, 1)" in error.expected
