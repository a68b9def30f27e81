"""growdsl/grow/wire.py, how rank 0's growth decision reaches the other ranks without pickle: every
kind of value its table lists comes back equal (tensors bit-equal, with their dtype, shape and
requires_grad; a view without the storage it views), anything else is refused by name at `pack`,
a message naming an unregistered class or malformed is refused at `unpack`, and every built-in
transform's decision, sent and received, grows the same weights as the decision itself."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from growdsl import ir
from growdsl.grow import wire
from growdsl.grow.eps_search import EpsSearch
from growdsl.grow.guard import propose_finite
from growdsl.grow.net import Net
from growdsl.grow.policy import GrowthPolicy
from growdsl.grow.split import SplitChoice
from growdsl.grow.splitting.schemes import Scheme
from growdsl.grow.step import apply_chosen, decision, from_decision
from growdsl.ir import lower
from growdsl.lang import parse_text
from growdsl.run.config import train_config
from growdsl.run.datasets import describe, load_data
from growdsl.run.loop import compute_loss
from growdsl.run.member import initial_payload, state_from_payload


def _round_trip(value):
    return wire.unpack(wire.pack(value))


def _same(a, b) -> bool:
    """Equal values of the same types, tensors bit-equal with the same dtype and requires_grad."""
    if isinstance(a, torch.Tensor):
        return (
            isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
            and a.requires_grad == b.requires_grad and torch.equal(a.detach(), b.detach())
        )  # fmt: skip
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "__dataclass_fields__"):
        return type(a) is type(b) and all(_same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    return type(a) is type(b) and a == b


def test_every_kind_of_value_comes_back_equal():
    grid = torch.arange(12.0).reshape(3, 4)
    value = {
        "plain": [None, True, False, 0, -7, 2**62, "é ✓", 0.1, -0.0],
        "nonfinite": [math.nan, math.inf, -math.inf],
        "tuple": (1, (2, [3])),
        "int keys": {0: "a", 5: ("b",)},
        "ordered": OrderedDict([("w", grid)]),
        "tensors": [
            torch.randn(3, 2, dtype=torch.float64),
            torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
            torch.tensor([True, False, True]),
            torch.arange(5, dtype=torch.int64),
            torch.tensor(3.25),  # 0-dim
            torch.empty(0, 3),
            grid.t(),  # not contiguous
            torch.ones(2, requires_grad=True),
            torch.Generator().manual_seed(3).get_state(),  # a generator's state, as a decision sends it
        ],
        "path": Path("runs/a"),
    }
    got = _round_trip(value)
    expected = {**value, "ordered": dict(value["ordered"])}  # an OrderedDict comes back a dict
    assert _same(expected, got)


def test_sendable_dataclasses_come_back_as_themselves():
    scheme = Scheme("two", (1.0, -1.0), (0.5, 0.5))
    search = EpsSearch(0.01, (0.01, 0.1), (1.0, 2.0), (1.5, math.nan), False)
    choice = SplitChoice(3, scheme, torch.randn(7), -0.25, 0.01, search)
    assert _same(choice, _round_trip(choice))


def test_a_view_travels_without_the_storage_it_views():
    rows = list(torch.randn(128, 257).unbind())  # a split's directions: views of one tensor
    sent = wire.pack({"directions": rows})
    assert sent.numel() < 1.1 * 128 * 257 * 4  # each row alone, not all 128 rows for each
    assert _same(rows, _round_trip(rows))


@dataclass
class _Unmarked:
    x: int


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (lambda: 0, "function"),
        (_Unmarked(1), "_Unmarked"),
        ({"deep": [(1, {2: object()})]}, "builtins.object"),
        (torch.zeros(3).to_sparse(), "sparse"),
    ],
    ids=["function", "unmarked_dataclass", "object_deep_inside", "sparse_tensor"],
)
def test_what_the_wire_cannot_carry_is_refused_by_name_at_pack(value, named):
    with pytest.raises(wire.NotSendable, match=named):
        wire.pack(value)


def test_a_refusal_is_raised_where_it_is_unpacked():
    with pytest.raises(wire.NotSendable, match="no can do"):
        wire.unpack(wire.pack_refusal("no can do"))


def _forged(header: dict) -> torch.Tensor:
    text = json.dumps(header).encode()
    return torch.frombuffer(bytearray(len(text).to_bytes(8, "little") + text), dtype=torch.uint8)


@pytest.mark.parametrize(
    "header",
    [
        {"value": {"dataclass": ["os.system", [["command", "echo hi"]]]}, "tensors": []},
        {"value": {"dataclass": [f"{__name__}._Unmarked", [["x", 1]]]}, "tensors": []},
        {"value": {"tensor": 0}, "tensors": [{"dtype": "Tensor", "shape": [1], "cuda": 0, "grad": 0}]},
        {"value": {"tensor": 0}, "tensors": [{"dtype": "float32", "shape": [4], "cuda": 0, "grad": 0}]},
        {"value": {"eval": "1 + 1"}, "tensors": []},
        {"value": {"tuple": [], "dict": []}, "tensors": []},
    ],
    ids=["function_by_name", "unmarked_dataclass", "not_a_dtype", "bytes_missing", "unknown_tag", "two_tags"],
)
def test_unpack_builds_nothing_a_message_names_but_what_the_table_lists(header):
    with pytest.raises(wire.NotSendable, match="malformed message"):
        wire.unpack(_forged(header))


def test_bytes_that_are_no_message_are_refused():
    with pytest.raises(wire.NotSendable, match="malformed message"):
        wire.unpack(torch.tensor([200, 0, 0, 0, 0, 0, 0, 0, 1, 2], dtype=torch.uint8))


MLP = "flatten linear(16..48) as h1 tanh linear(16..48) as h2 tanh linear(classes)"
DEEP = "flatten linear(16..48) as h1 relu repeat 1..3 { linear(16) relu } linear(classes)"
CELL = "flatten linear(16..48) as h1 tanh cell(16) as c1 linear(classes)"
TRANSFORMS = {  # every built-in transform: (model, grow statement), one step of it grows the net
    "split": (MLP, "split(frac: 0.25, eps: 0.01, method: fast)"),
    "split_eps_auto": (MLP, "split(frac: 0.25, eps: auto)"),
    "firefly": (MLP, "firefly(wider: 4, candidates: 4, eps: 0.01, frac: 0.25)"),
    "firefly_deeper": (DEEP, "firefly(wider: 0, deeper: 1, candidates: 4, eps: 0.01)"),
    "net2wider": (MLP, "net2wider(count: 2, noise: 0.1)"),
    "net2deeper": (DEEP, "net2deeper(count: 1)"),
    "gradmax": (MLP, "gradmax(count: 2)"),
    "tiny": (MLP, "tiny(count: 2, threshold: 0)"),
    "pathlevel": (CELL, "pathlevel(on: [c1], choose: random)"),  # every op; one grows at random
}
SPEC = """
data digits(test: 0.2)
block cell(c) {{ linear(c) tanh branch add {{ linear(c) | identity }} }}
model m {{ {model} }}
train {{ epochs 4 batch 64 optimizer sgd(lr: 0.1) seed 0 device cpu }}
grow {{ every 1 epochs
 {grow} }}
"""


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_a_decision_sent_and_received_grows_what_the_decision_grows(name):
    model, grow = TRANSFORMS[name]
    spec = parse_text(SPEC.format(model=model, grow=grow), "wire.grow")
    info = describe(spec.data)
    config = train_config(spec.train)
    graph = lower(spec, info.input_shape, info.classes)
    data = load_data(spec.data, 0)
    state = state_from_payload(initial_payload(graph, config, 0, 4), config, torch.device("cpu"), 4)
    net, train = Net(state.graph, state.model), (data.train[0][:256], data.train[1][:256])
    policy = GrowthPolicy.from_block(spec.grow)
    rng = torch.Generator().manual_seed(1)
    loss_fn = lambda out, y: compute_loss(config.loss, out, y)  # noqa: E731
    candidates, skipped = propose_finite(policy.transforms, net, train, loss_fn, rng, 1)
    chosen = policy.select(net, candidates, policy.step_budget(net.graph, 1, 4, 0))
    assert any(chosen), "the case must grow"

    received = torch.Generator()
    sent = wire.pack(decision(skipped, chosen, rng))
    skipped_there, chosen_there = from_decision(wire.unpack(sent), received)
    assert skipped_there == skipped and torch.equal(received.get_state(), rng.get_state())

    def grown(picks):
        generator = torch.Generator()
        generator.set_state(rng.get_state())
        picked = [(t, p) for t, p in zip(policy.transforms, picks, strict=True) if p]
        return apply_chosen(net, picked, generator=generator).net

    here, there = grown(chosen), grown(chosen_there)
    assert ir.to_json(here.graph) == ir.to_json(there.graph)
    a, b = here.model.state_dict(), there.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
