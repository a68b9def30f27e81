"""What a child inherits: parent 1's state, parent 2's layers at the positions mixed with
shrink-perturb exactly as the formula says, and the optimizer state where shapes match."""

from __future__ import annotations

import random

import pytest
import torch

from growdsl.compile import compile_graph
from growdsl.grow.surgery import fresh_tensors
from growdsl.ir import from_json
from growdsl.lang import parse_text
from growdsl.run import train_member
from growdsl.run.config import train_config
from growdsl.run.datasets import load_data
from growdsl.run.member import initial_payload
from growdsl.search.inherit import child_payload
from growdsl.search.space import graft_all, mix, sample_member

SPEC = """\
data digits(test: 0.2, val: 0.1)
model m {
    flatten
    linear(6..14) as a tanh
    choice { linear(8) relu | linear(10) tanh }
    linear(classes)
}
train { epochs 4 batch 128 optimizer sgd(lr: 0.1, momentum: 0.9) seed 0 }
"""


@pytest.fixture(scope="module")
def parents():
    """Two members of different architectures, each trained an epoch (so momentum exists)."""
    from growdsl import api

    spec = parse_text(SPEC, "inherit.grow")
    config = train_config(spec.train, regression=False)
    data = load_data(spec.data, 0)
    space = api.lower(spec)
    rng = random.Random(5)
    members = []
    while len(members) < 2:
        graph = sample_member(space, rng)
        if members and graph["m.a"]["args"]["out"] == from_json(members[0]["graph"])["m.a"]["args"]["out"]:
            continue
        payload = initial_payload(graph, config, len(members), config.epochs)
        members.append(train_member(payload, data, config, 1)[0])
    return config, members


def test_taken_layers_get_shrink_perturb_exactly_and_kept_ones_parent_ones_weights(parents):
    config, (one, two) = parents
    g1, g2 = from_json(one["graph"]), from_json(two["graph"])
    grafts, taken = mix(g1, g2, 1.0, random.Random(0))
    assert "m.a" in taken and grafts
    child = child_payload(one, two, grafts, config, shrink=0.4, perturb=0.1, seed=7, record={"member": 9})
    graph = from_json(child["graph"])
    assert graph["m.a"]["args"]["out"] == g2["m.a"]["args"]["out"]
    # the formula, with the same fresh draw the child made for the graft at m.a (seed + 1)
    from growdsl.grow.net import Net
    from growdsl.run.member import state_from_payload

    state = state_from_payload(child, config, torch.device("cpu"), config.epochs)
    net = Net(state.graph, state.model)
    keys = ["m.a.weight", "m.a.bias"]
    fresh = fresh_tensors(graph, keys, torch.Generator().manual_seed(8), net)
    for key in keys:
        expected = 0.4 * two["model"][key] + 0.1 * fresh[key]
        assert torch.equal(child["model"][key], expected), key
    # the head keeps parent 1's weights on the columns both have
    cols = min(g1["m.a"]["args"]["out"], graph["m.a"]["args"]["out"])
    head = next(k for k in child["model"] if k.endswith(".weight") and child["model"][k].shape[0] == 10)
    if graph["m.3"]["chosen"] == g1["m.3"]["chosen"]:
        assert torch.equal(child["model"][head][:, :cols], one["model"][head][:, :cols])
    assert [r["event"] for r in child["history"][-len(grafts) :]] == ["mix"] * len(grafts)
    assert graft_all(g1, grafts).g.nodes.keys() == graph.g.nodes.keys()


def test_without_taken_positions_the_child_is_parent_one_and_keeps_its_optimizer_state(parents):
    config, (one, _two) = parents
    child = child_payload(one, None, [], config, shrink=0.4, perturb=0.1, seed=3, record={"member": 4})
    assert all(torch.equal(child["model"][k], one["model"][k]) for k in one["model"])
    state = child["optimizer"]["state"]
    assert state and all(
        torch.equal(state[i]["momentum_buffer"], one["optimizer"]["state"][i]["momentum_buffer"])
        for i in state
    )
    assert child["epoch"] == one["epoch"] and child["rng"]["shuffle"] is not one["rng"]["shuffle"]


def _momentum(payload) -> dict[str, torch.Tensor]:
    """Each parameter's momentum buffer by name (the optimizer numbers parameters in module order)."""
    with torch.device("meta"):
        names = [n for n, _ in compile_graph(from_json(payload["graph"])).named_parameters()]
    state = payload["optimizer"]["state"]
    return {n: state[i]["momentum_buffer"] for i, n in enumerate(names) if i in state}


def test_optimizer_state_is_kept_where_shapes_match_and_dropped_where_they_do_not(parents):
    config, (one, two) = parents
    g1, g2 = from_json(one["graph"]), from_json(two["graph"])
    grafts, _ = mix(g1, g2, 1.0, random.Random(0))
    child = child_payload(one, two, grafts, config, shrink=0.4, perturb=0.1, seed=7, record={"member": 9})
    old, new = _momentum(one), _momentum(child)
    assert "m.a.weight" not in new  # its width changed: parent 1's momentum has no place there
    kept = [n for n in new if n in old and old[n].shape == child["model"][n].shape]
    assert kept and all(torch.equal(new[n], old[n]) for n in kept)
    assert all(n in kept for n in new)  # no state appears from nowhere
