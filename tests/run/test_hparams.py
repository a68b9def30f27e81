"""Open `train` settings: found at their places, drawn from their distributions, perturbed as Ray
Tune's PBT does (within bounds), written back into the block, and checked at every end."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from growdsl import api
from growdsl.errors import SpecError
from growdsl.lang import format_spec, parse_text
from growdsl.run.config import train_config
from growdsl.run.hparams import corners, default_train, draw, fix_train, open_hparams, perturb, shown

TRAIN = """
train {
    epochs int(2..6, step: 2)
    batch {32, 64}
    optimizer sgd(lr: log(1e-4..1e-1), momentum: uniform(0.5..0.95), weight_decay: {0, 5e-4})
    seed 0
}
"""


def block(text: str = TRAIN):
    return parse_text("model m { flatten linear(classes) }\n" + text, "h.grow").train


def hypers_of(text: str = TRAIN):
    return open_hparams(block(text))


def test_open_places_are_found_in_the_order_written_with_their_forms():
    found = hypers_of()
    assert [(h.key, h.kind) for h in found] == [
        ("epochs", "int"),
        ("batch", "set"),
        ("optimizer.lr", "log"),
        ("optimizer.momentum", "uniform"),
        ("optimizer.weight_decay", "set"),
    ]
    assert (found[0].lo, found[0].hi, found[0].step, found[0].grid()) == (2, 6, 2, 3)


def test_draws_follow_their_distributions():
    hypers = hypers_of()
    rng = random.Random(0)
    draws = [draw(hypers, rng) for _ in range(4000)]
    assert {d["epochs"] for d in draws} == {2, 4, 6}
    assert {d["batch"] for d in draws} == {0, 1}  # a set's value is its index
    logs = [math.log10(d["optimizer.lr"]) for d in draws]
    assert min(logs) >= -4 and max(logs) <= -1
    assert statistics.mean(logs) == pytest.approx(-2.5, abs=0.05)  # log-uniform: uniform exponent
    momenta = [d["optimizer.momentum"] for d in draws]
    assert statistics.mean(momenta) == pytest.approx(0.725, abs=0.01)


def test_perturb_resamples_a_quarter_and_scales_or_shifts_the_rest_within_bounds():
    hypers = hypers_of()
    values = {
        "epochs": 4,
        "batch": 1,
        "optimizer.lr": 1e-2,
        "optimizer.momentum": 0.6,
        "optimizer.weight_decay": 0,
    }
    rng = random.Random(1)
    seen_lr, seen_decay = set(), set()
    for _ in range(400):
        out = perturb(values, hypers, rng)
        assert out["epochs"] in (2, 4, 6) and 0.5 <= out["optimizer.momentum"] <= 0.95
        assert 1e-4 <= out["optimizer.lr"] <= 1e-1
        seen_lr.add(round(out["optimizer.lr"], 12))
        seen_decay.add(out["optimizer.weight_decay"])
    assert {0.008, 0.012} <= seen_lr  # x0.8 and x1.2
    assert len(seen_lr) > 10  # and resampled values
    assert seen_decay == {0, 1}  # a neighbour in the set (the first value has one)
    # a value at its bound stays at it when scaled past it
    at_top = perturb({**values, "optimizer.momentum": 0.95}, hypers, random.Random(5))
    assert at_top["optimizer.momentum"] <= 0.95


def test_values_written_into_the_block_are_what_the_run_reads_and_format_back():
    hypers = hypers_of()
    values = {
        "epochs": 6,
        "batch": 1,
        "optimizer.lr": 0.0031622776601683794,
        "optimizer.momentum": 0.9,
        "optimizer.weight_decay": 1,
    }
    fixed = fix_train(block(), values, hypers)
    config = train_config(fixed)
    assert (config.epochs, config.batch) == (6, 64)
    assert config.optimizer.kwargs["lr"] == 0.0031622776601683794
    assert config.optimizer.kwargs["weight_decay"] == 5e-4
    spec = parse_text("model m { flatten linear(classes) }\n", "h.grow")
    from dataclasses import replace

    text = format_spec(replace(spec, train=fixed))
    assert train_config(parse_text(text, "again.grow").train) == config
    assert (
        shown(values, hypers)["batch"] == 64
        and shown(values, hypers)["optimizer.lr"] == 0.0031622776601683794
    )


def test_a_run_without_a_search_takes_a_sets_first_value():
    config = train_config(default_train(block("train { batch {32, 64} optimizer adam(lr: {3e-3, 1e-3}) }")))
    assert config.batch == 32 and config.optimizer.kwargs["lr"] == 3e-3


def test_a_distribution_without_a_search_is_an_error_at_its_place():
    with pytest.raises(SpecError, match=r"optimizer.lr: log\(..\) is drawn by a search") as info:
        default_train(block("train {\n  optimizer adam(lr: log(1e-4..1e-2))\n}"))
    assert (info.value.span.line, info.value.span.col) == (3, 22)


def test_every_end_of_every_open_place_is_checked():
    ends = [train_config(b) for b in corners(block())]
    assert {c.epochs for c in ends} == {2, 6} and {c.batch for c in ends} == {32, 64}
    assert {c.optimizer.kwargs["lr"] for c in ends} == {1e-4, 1e-1}


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ("batch int(8..100.5)", "needs whole numbers"),
        ("batch int(8..128, step: 0)", "needs whole numbers and a step >= 1"),
        ("optimizer adam(lr: log(0..1e-2))", "log.lo..hi. needs lo > 0"),
        ("optimizer adam(lr: uniform(1e-2..1e-2))", r"uniform\(..\) needs lo < hi"),
        ("optimizer adam(lr: logg(1e-4..1e-2))", "unknown distribution 'logg': did you mean 'log'"),
        ("optimizer adam(lr: 1e-4..1e-2)", "a range in `train` is not a value"),
        ("optimizer adam(lr: log(1e-4))", "bad distribution"),
        ("batch {32, int(8..16)}", "a set's values must be plain values"),
    ],
)
def test_malformed_open_places_are_errors(train, message):
    with pytest.raises(SpecError, match=message):
        hypers_of(f"train {{ {train} }}")


def test_check_validates_the_ends_of_a_search_space(tmp_path):
    spec = tmp_path / "s.grow"
    spec.write_text(
        "data digits(test: 0.2, val: 0.1)\nmodel m { flatten linear({8, 16}) relu linear(classes) }\n"
        "train { optimizer sgd(momentum: uniform(0.5..1.5)) }\nsearch random(trials: 2)\n"
    )
    with pytest.raises(SpecError, match="bad value 1.5 for sgd option 'momentum'"):
        api.check_file(spec)
    spec.write_text(spec.read_text().replace("1.5", "0.9"))
    api.check_file(spec)


def test_where_reads_bounds_on_params_and_flops_and_tells_which_breaks():
    from growdsl.lang import parse_value
    from growdsl.options import BadValue
    from growdsl.search.constraints import broken, read_where

    graph = api.lower(parse_text("model m { flatten linear(16) relu linear(classes) }", "w.grow"))
    # 64*16 + 16 + 16*10 + 10 = 1,210 params, 2 * (64*16 + 16*10) = 2,368 FLOPs
    (bound,) = read_where(parse_value("params <= 1210"))
    assert bound.text == "params <= 1210" and broken(graph, (bound,)) is None
    both = read_where(parse_value("[params < 1210, flops >= 2k]"))
    assert broken(graph, both) == both[0]
    assert broken(graph, read_where(parse_value("[flops < 2368]"))).metric == "flops"
    for bad in ("lr <= 3", "params", "[]", "[params < 3, 4]"):
        with pytest.raises(BadValue):
            read_where(parse_value(bad))
