"""`train_member`: a net trained from a checkpoint payload, in this process or in another one,
ends the same; training in two legs through the payload equals training in one."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import torch

from growdsl import api
from growdsl.lang import parse_text
from growdsl.run import run, train_member
from growdsl.run.checkpoint import load_checkpoint
from growdsl.run.config import train_config
from growdsl.run.datasets import load_data

SPEC = """\
data digits(test: 0.3)
model m {
    flatten
    linear(6..24) as h tanh
    linear(classes)
}
train { epochs 6 batch 128 optimizer sgd(lr: 0.1, momentum: 0.9) schedule cosine seed 4 }
grow {
    every 2 epochs
    split(method: fast, count: 3, samples: 64)
}
"""


def _epoch0(tmp_path):
    """A run's epoch-0 payload, the spec, its training settings and its data."""
    spec = parse_text(SPEC, "member.grow")
    run(spec, tmp_path / "zero", quiet=True, epochs_limit=0)
    config = train_config(spec.train, regression=False)
    return spec, load_checkpoint(tmp_path / "zero"), config, load_data(spec.data, config.seed)


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_legs_through_the_payload_equal_one_and_equal_the_run(tmp_path):
    spec, payload, config, data = _epoch0(tmp_path)
    whole, metrics = train_member(payload, data, config, 6, grow=spec.grow)
    first, _ = train_member(payload, data, config, 3, grow=spec.grow)
    second, again = train_member(first, data, config, 3, grow=spec.grow)
    assert whole["epoch"] == second["epoch"] == 6 and metrics == again
    assert _same(whole["model"], second["model"]) and whole["graph"] == second["graph"]
    assert any(r["event"] == "grow" for r in whole["history"])
    full = api.run_spec(spec, tmp_path / "full", quiet=True)
    assert _same(whole["model"], full.model.state_dict())


def test_a_member_trained_in_another_process_ends_the_same(tmp_path):
    spec, payload, config, data = _epoch0(tmp_path)
    here, metrics = train_member(payload, data, config, 4, grow=spec.grow)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        there, remote = pool.submit(train_member, payload, data, config, 4, grow=spec.grow).result()
    untimed = [[{k: v for k, v in r.items() if k != "time"} for r in p["history"]] for p in (here, there)]
    assert untimed[0] == untimed[1] and metrics == remote
    assert _same(here["model"], there["model"]) and here["graph"] == there["graph"]


def test_training_leaves_the_payload_it_started_from_as_it_was(tmp_path):
    """torch's optimizer would otherwise keep the payload's momentum tensors and update them in
    place: a second member trained from the same payload (a PBT child and its parent) would start
    elsewhere."""
    spec, payload, config, data = _epoch0(tmp_path)
    first, _ = train_member(payload, data, config, 2)
    before = {i: {k: v.clone() for k, v in s.items()} for i, s in first["optimizer"]["state"].items()}
    once, _ = train_member(first, data, config, 1)
    twice, _ = train_member(first, data, config, 1)
    after = first["optimizer"]["state"]
    assert all(torch.equal(after[i][k], before[i][k]) for i in before for k in before[i])
    assert _same(once["model"], twice["model"])
