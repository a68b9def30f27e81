"""Hyperparameters drawn with the architecture: the `train` settings a spec leaves open.

A train setting (`batch`, `epochs`) or an argument of the optimizer, the schedule or
`on_divergence` (`optimizer.lr`, `schedule.gamma`) is *open* when it is written as

| form | meaning | a draw |
| --- | --- | --- |
| `{a, b, ...}` | one of the values | uniform over the values |
| `log(lo..hi)` | a positive number | log-uniform on [lo, hi] |
| `uniform(lo..hi)` | a number | uniform on [lo, hi] |
| `int(lo..hi, step: s)` | a whole number | uniform over lo, lo + s, ... (<= hi); `step` 1 by default |

(`a..b` alone stays a growable size of the model; in `train` it is an error.) Each open place is a
`Hyper` keyed by its path (`optimizer.lr`). A search draws a value for every key (`draw`), PBT
perturbs the values of a member it copies (`perturb`, as Ray Tune's PBT explores), and
`fix_train` writes the values into the `train` block, so everything downstream reads a plain block
and a member's `spec.grow` is a runnable spec with its values. Without a search, a set takes its
first value (as a model's set does) and a distribution is an error (`default_train`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from growdsl.errors import SpecError
from growdsl.lang.ast import Call, Num, Range, SetValue, TrainBlock, Value
from growdsl.lang.suggest import unknown_name_message

DISTRIBUTIONS = ("log", "uniform", "int")
METHOD_SETTINGS = ("optimizer", "schedule", "on_divergence")  # values are calls whose arguments may be open
RESAMPLE = 0.25  # Ray Tune PBT's resample_probability
FACTORS = (0.8, 1.2)  # Ray Tune PBT's perturbation factors


@dataclass(frozen=True)
class Hyper:
    """One open place of a `train` block: `key` (`batch`, `optimizer.lr`), its `kind` (`set` or a
    distribution), the set's `values` or the distribution's bounds and step, and where it is."""

    key: str
    kind: str
    values: tuple[Value, ...] = ()
    lo: float = 0.0
    hi: float = 0.0
    step: int = 1
    value: Value | None = None  # as written, for messages and spans

    def grid(self) -> int:
        """How many whole numbers an `int` distribution holds."""
        return (int(self.hi) - int(self.lo)) // self.step + 1


def open_hparams(block: TrainBlock | None) -> list[Hyper]:
    """Every open place of `block`, in the order written; a malformed distribution is a SpecError
    at its place."""
    found: list[Hyper] = []
    for setting in block.settings if block else ():
        if setting.name in METHOD_SETTINGS and isinstance(setting.value, Call):
            for arg in setting.value.args:
                if arg.key is not None and (hyper := _hyper(f"{setting.name}.{arg.key}", arg.value)):
                    found.append(hyper)
        elif hyper := _hyper(setting.name, setting.value):
            found.append(hyper)
    return found


def _hyper(key: str, value: Value) -> Hyper | None:
    if isinstance(value, SetValue):
        for item in value.items:
            if _hyper(key, item) is not None:
                raise SpecError(f"{key}: a set's values must be plain values", item.span)
        return Hyper(key, "set", values=value.items, value=value)
    if isinstance(value, Range):
        raise SpecError(
            f"{key}: a range in `train` is not a value",
            value.span,
            hint="draw it: log(lo..hi), uniform(lo..hi) or int(lo..hi, step: s)",
        )
    if not isinstance(value, Call):
        return None
    if value.name in DISTRIBUTIONS:
        return _distribution(key, value)
    if value.positional and isinstance(value.positional[0], Range):
        raise SpecError(unknown_name_message("distribution", value.name, DISTRIBUTIONS), value.span)
    return None


def _distribution(key: str, call: Call) -> Hyper:
    rng = call.positional[0] if call.positional else None
    bounds = (
        [b.value if isinstance(b, Num) else None for b in (rng.lo, rng.hi)]
        if isinstance(rng, Range)
        else [None]
    )
    extra = [a for a in call.args[1:] if a.key != "step" or call.name != "int"]
    if len(call.positional) != 1 or extra or None in bounds:
        form = "int(lo..hi, step: s)" if call.name == "int" else f"{call.name}(lo..hi)"
        raise SpecError(f"{key}: bad distribution", call.span, expected=form + " with numbers for lo and hi")
    lo, hi = bounds
    if not lo < hi:
        raise SpecError(f"{key}: {call.name}(..) needs lo < hi", rng.span)
    if call.name == "log" and lo <= 0:
        raise SpecError(f"{key}: log(lo..hi) needs lo > 0", rng.span)
    step = 1
    if call.name == "int":
        step_value = call.keywords.get("step")
        step = step_value.value if isinstance(step_value, Num) else 1 if step_value is None else 0
        if not (float(lo).is_integer() and float(hi).is_integer() and float(step).is_integer() and step >= 1):
            raise SpecError(f"{key}: int(lo..hi, step: s) needs whole numbers and a step >= 1", call.span)
    return Hyper(key, call.name, lo=lo, hi=hi, step=int(step), value=call)


# ------------------------------------------------------------------ drawing and perturbing


def draw(
    hypers: list[Hyper], rng: random.Random, pick: Callable[[str, int], int] | None = None
) -> dict[str, Any]:
    """A value for every open place: one rng draw each, in order. With `pick` (a stratified
    population's member, `growdsl/search/strata.py`) a set's value and an `int`'s are its pick,
    keyed `train:KEY`; a `log` or `uniform` value is drawn from `rng` all the same."""
    return {h.key: _sample(h, rng, pick) for h in hypers}


def _sample(h: Hyper, rng: random.Random, pick: Callable[[str, int], int] | None = None) -> Any:
    index = pick or (lambda _key, count: rng.randrange(count))
    if h.kind == "set":
        return index(f"train:{h.key}", len(h.values))  # a set's value is kept as its index
    if h.kind == "log":
        return math.exp(rng.uniform(math.log(h.lo), math.log(h.hi)))
    if h.kind == "uniform":
        return rng.uniform(h.lo, h.hi)
    return int(h.lo) + h.step * index(f"train:{h.key}", h.grid())


def perturb(values: dict[str, Any], hypers: list[Hyper], rng: random.Random) -> dict[str, Any]:
    """PBT's explore step, as Ray Tune's PBT does it: each value is resampled with probability
    0.25, else a number is multiplied by 0.8 or 1.2 and a set's value moves to a neighbour in
    the set's order. Unlike Ray Tune, a perturbed number stays within its distribution's bounds
    (and on an `int`'s grid), so a member's values always come from the space."""
    out = dict(values)
    for h in hypers:
        if rng.random() < RESAMPLE:
            out[h.key] = _sample(h, rng)
        elif h.kind == "set":
            out[h.key] = min(max(values[h.key] + rng.choice((-1, 1)), 0), len(h.values) - 1)
        else:
            scaled = min(max(values[h.key] * rng.choice(FACTORS), h.lo), h.hi)
            if h.kind == "int":
                scaled = int(h.lo) + h.step * min(round((scaled - h.lo) / h.step), h.grid() - 1)
            out[h.key] = scaled
    return out


def shown(values: dict[str, Any], hypers: list[Hyper]) -> dict[str, Any]:
    """The values as a person reads them (a set's value itself, not its index): what a member's
    `"hparams"` in `search.jsonl` holds."""
    by_key = {h.key: h for h in hypers}
    return {key: _plain(_as_value(by_key[key], v)) for key, v in values.items()}


def _plain(value: Value) -> Any:
    if isinstance(value, Num):
        return value.value
    from growdsl.lang.format import format_value

    return format_value(value)


# ------------------------------------------------------------------ writing values into the block


def fix_train(block: TrainBlock | None, values: dict[str, Any], hypers: list[Hyper]) -> TrainBlock | None:
    """`block` with every open place replaced by its value in `values`."""
    if block is None:
        return None
    by_key = {h.key: h for h in hypers}
    settings = []
    for setting in block.settings:
        value = setting.value
        if setting.name in by_key:
            value = _as_value(by_key[setting.name], values[setting.name])
        elif setting.name in METHOD_SETTINGS and isinstance(value, Call):
            args = tuple(
                replace(a, value=_as_value(by_key[k], values[k]))
                if (k := f"{setting.name}.{a.key}") in by_key
                else a
                for a in value.args
            )
            value = replace(value, args=args)
        settings.append(replace(setting, value=value))
    return replace(block, settings=tuple(settings))


def _as_value(h: Hyper, value: Any) -> Value:
    if h.kind == "set":
        return h.values[value]
    number = int(value) if h.kind == "int" else float(value)
    return Num(number, str(number) if h.kind == "int" else repr(number), h.value.span)


def default_train(block: TrainBlock | None) -> TrainBlock | None:
    """The block a run without a search trains with: every set's first value; a distribution
    has no such value and is an error at its place."""
    hypers = open_hparams(block)
    for h in hypers:
        if h.kind != "set":
            raise SpecError(
                f"{h.key}: {h.kind}(..) is drawn by a search, and this spec has no `search`",
                h.value.span,
                hint="give a value, or a set {a, b} (a run without a search takes its first value)",
            )
    return fix_train(block, {h.key: 0 for h in hypers}, hypers)


def corners(block: TrainBlock | None) -> list[TrainBlock | None]:
    """Blocks with every open place at one end of its range (each set value in turn, each
    distribution's lo and hi): what `check` validates, so every draw is a valid setting."""
    hypers = open_hparams(block)
    if not hypers:
        return [block]
    return [fix_train(block, values, hypers) for values in corner_values(hypers)]


def corner_values(hypers: list[Hyper]) -> list[dict[str, Any]]:
    """The values of `corners`' blocks (one dict, empty, when nothing is open); the first is
    every set's first value and every distribution's low end."""
    ends = {h.key: (range(len(h.values)) if h.kind == "set" else _ends(h)) for h in hypers}
    count = max((len(v) for v in ends.values()), default=1)
    return [{k: v[min(i, len(v) - 1)] for k, v in ends.items()} for i in range(count)]


def _ends(h: Hyper) -> tuple[Any, Any]:
    if h.kind == "int":
        return int(h.lo), int(h.lo) + h.step * (h.grid() - 1)
    return h.lo, h.hi
