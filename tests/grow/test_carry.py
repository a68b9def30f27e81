"""The one weight carry: every edit kind, applied then carried, keeps the network's function (eval
mode); the optimizer state follows renames, copies and slices; the policy plans and charges every
edit kind exactly."""

from __future__ import annotations

import pytest
import torch

from growdsl.compile import compile_graph
from growdsl.grow.carry import carried_optimizer
from growdsl.grow.deepen import InputStats, identity_values
from growdsl.grow.net import Net
from growdsl.grow.policy import Budget, GrowthPolicy, Schedule
from growdsl.grow.step import apply_chosen
from growdsl.grow.surgery import carry
from growdsl.grow.transform import Candidate
from growdsl.ir import AppendCopy, Graft, Insert, Widen, Wrap, added_cost, lower, param_count
from growdsl.ir.edits import subtree_json
from growdsl.lang import parse_text

MLP = "model m { flatten linear(6..12) as h bn tanh repeat 1..3 { linear(6) relu } linear(3) }"
CNN = "model m { conv(4) as c bn relu sepconv(6) as s relu gap flatten linear(3) }"
SHAPES = {MLP: (1, 4, 4), CNN: (2, 6, 6)}


def _net(text: str) -> Net:
    torch.manual_seed(0)
    shape = SHAPES[text]
    graph = lower(parse_text(text), shape, 3)
    model = compile_graph(graph).double()
    with torch.no_grad():  # batch norm with statistics of its own, so carrying them is tested
        for _ in range(3):
            model(torch.randn(16, *shape, dtype=torch.float64))
    model.eval()
    return Net(graph, model)


def _x(text: str) -> torch.Tensor:
    return torch.randn(10, *SHAPES[text], generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def _identity_op(node: str):
    """An `init` that makes the inserted op `node` the identity (an eye matrix or Dirac kernel)."""

    def init(net, done):
        state = net.model.state_dict()
        channels = state[f"{node}.weight"].shape[0]
        stats = InputStats(torch.zeros(channels), torch.ones(channels), nonneg=False)
        for key, value in identity_values(net.graph, node, state, stats).items():
            state[key].copy_(value)

    return init


CASES = {
    "widen fresh": (MLP, Widen("m.h", (None, None)), None),
    "wrap mean linear": (MLP, Wrap("m.h", "mean", 2), None),
    "wrap mean three paths": (MLP, Wrap("m.h", "mean", 3), None),
    "wrap mean a repeat": (MLP, Wrap("m.4", "mean", 2), None),
    "wrap concat linear": (MLP, Wrap("m.h", "concat", 2), None),
    "wrap mean conv": (CNN, Wrap("m.c", "mean", 2), None),
    "wrap concat conv": (CNN, Wrap("m.c", "concat", 3), None),
    "wrap concat sepconv": (CNN, Wrap("m.s", "concat", 2), None),
    "insert identity": (CNN, Insert("m", 2, "identity"), None),
    "insert linear as the identity": (MLP, Insert("m", 3, "linear", (("out", 6),)), _identity_op("m.6")),
    "insert conv as the identity": (CNN, Insert("m", 3, "conv", (("out", 4),)), _identity_op("m.8")),
}


@pytest.mark.parametrize("case", CASES)
def test_every_edit_kind_carried_keeps_the_outputs(case):
    text, edit, init = CASES[case]
    net = _net(text)
    x = _x(text)
    with torch.no_grad():
        before = net.model(x)
        grown, done = carry(net, edit, init, torch.Generator().manual_seed(0))
        after = grown.model(x)
    assert (after - before).abs().max() < 1e-5, case
    assert grown.graph is not net.graph and param_count(grown.graph) == sum(
        p.numel() for p in grown.model.parameters()
    )
    assert set(done.sources) <= set(grown.model.state_dict())


def test_an_appended_identity_copy_keeps_the_outputs():
    from growdsl.grow.deepen import deepen

    net = _net(MLP)
    x = _x(MLP)
    deeper = deepen(net, "m.4", x, torch.Generator().manual_seed(1))
    assert deeper.node == "m.4.1"
    with torch.no_grad():
        assert (deeper.net.model(x) - net.model(x)).abs().max() < 1e-5


def test_grafting_an_equal_subtree_keeps_the_weights_and_a_wider_one_keeps_the_overlap():
    net = _net(MLP)
    x = _x(MLP)
    same, _ = carry(net, Graft("m.4", subtree_json(net.graph, "m.4")))
    with torch.no_grad():
        assert torch.equal(same.model(x), net.model(x))
    wider_graph = lower(parse_text(MLP.replace("linear(6) relu", "linear(9) relu")), (1, 4, 4), 3)
    wider, done = carry(net, Graft("m.4", subtree_json(wider_graph, "m.4")))
    old, new = net.model.state_dict(), wider.model.state_dict()
    assert new["m.4.0.0.weight"].shape == (9, 6)
    assert torch.equal(new["m.4.0.0.weight"][:6], old["m.4.0.0.weight"])
    assert torch.equal(new["m.5.weight"][:, :6], old["m.5.weight"])  # the consumer keeps its overlap
    assert done.sources["m.5.weight"].key == "m.5.weight"


def _trained_optimizer(net: Net, make) -> torch.optim.Optimizer:
    optimizer = make(net.model.parameters())
    net.model.train()
    for _ in range(3):
        loss = net.model(_x(MLP)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.model.eval()
    return optimizer


@pytest.mark.parametrize(
    ("make", "keys"),
    [
        (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), ("momentum_buffer",)),
        (lambda p: torch.optim.Adam(p, lr=0.01), ("exp_avg", "exp_avg_sq")),
    ],
    ids=["sgd", "adam"],
)
def test_optimizer_state_follows_a_wrapped_layer_to_its_new_names(make, keys):
    net = _net(MLP)
    optimizer = _trained_optimizer(net, make)
    old = {n: optimizer.state[p] for n, p in net.model.named_parameters()}
    grown, done = carry(net, Wrap("m.h", "mean", 2))
    assert done.renames == {"m.h": "m.h.0"}
    new_opt = carried_optimizer(optimizer, net.model, grown.model, [done], make)
    new = {n: new_opt.state[p] for n, p in grown.model.named_parameters()}
    for key in keys:
        for path in ("m.h.0", "m.h.1"):  # the original under its new name, and its copy
            assert torch.equal(new[f"{path}.weight"][key], old["m.h.weight"][key]), (key, path)
            assert torch.equal(new[f"{path}.bias"][key], old["m.h.bias"][key]), (key, path)
        assert torch.equal(new["m.5.weight"][key], old["m.5.weight"][key])


def test_optimizer_state_is_sliced_with_a_concat_wrap_and_param_groups_are_kept():
    net = _net(MLP)
    head = [p for n, p in net.model.named_parameters() if n.startswith("m.5")]
    body = [p for n, p in net.model.named_parameters() if not n.startswith("m.5")]

    def make(params):
        return torch.optim.SGD(params, lr=0.1, momentum=0.9)

    optimizer = _trained_optimizer(net, lambda _: make([{"params": body}, {"params": head, "lr": 0.01}]))
    old = {n: optimizer.state[p]["momentum_buffer"] for n, p in net.model.named_parameters()}
    grown, done = carry(net, Wrap("m.h", "concat", 2))
    new_opt = carried_optimizer(optimizer, net.model, grown.model, [done], make)
    new = {n: new_opt.state[p]["momentum_buffer"] for n, p in grown.model.named_parameters()}
    assert torch.equal(new["m.h.0.weight"], old["m.h.weight"][:3])
    assert torch.equal(new["m.h.1.weight"], old["m.h.weight"][3:])
    assert [g["lr"] for g in new_opt.param_groups] == [0.1, 0.01]
    group_of = {id(p): i for i, g in enumerate(new_opt.param_groups) for p in g["params"]}
    names = dict(grown.model.named_parameters())
    assert group_of[id(names["m.5.weight"])] == 1 and group_of[id(names["m.h.1.weight"])] == 0


class _Proposes:
    """A transform proposing given candidates, scored as given; its init leaves the carry's values."""

    name = "fixed"

    def __init__(self, candidates):
        self.candidates = candidates

    def propose(self, net, train, loss_fn, rng):
        return self.candidates

    def limit(self, net):
        return None

    def init(self, chosen):
        return None

    def describe(self, chosen, net):
        return {}


def test_the_policy_charges_a_wrap_its_exact_cost_under_a_params_budget():
    net = _net(MLP)
    wrap = Candidate("fixed", Wrap("m.h", "mean", 2), 1.0)
    cost = added_cost(net.graph, wrap.edit)[0]
    assert cost == 6 * 16 + 6
    policy = GrowthPolicy(Schedule(every=1), Budget(), [_Proposes([wrap])])
    for share, taken in ((cost, [wrap]), (cost - 1, [])):
        (chosen,) = policy.select(net, {0: [wrap]}, Budget(params=share))
        assert chosen == taken, share
    # a widening of the wrapped layer after the wrap has no range left (the paths have none)
    widen = Candidate("fixed", Widen("m.h", (0,)), 1e-6)
    (chosen,) = policy.select(net, {0: [wrap, widen]}, Budget())
    assert chosen == [wrap]


def test_a_step_renames_later_edits_after_a_wrap_and_logs_each_edit():
    net = _net(MLP)
    x = _x(MLP)
    wrap = Candidate("fixed", Wrap("m.4", "mean", 2), 1.0)
    deeper = Candidate("fixed", AppendCopy("m.4"), 1.0)
    applied = apply_chosen(net, [(_Proposes([]), [wrap, deeper])], probe=x)
    assert applied.net.graph.children("m.4.0") == ["m.4.0.0", "m.4.0.1"]
    assert [r["edit"]["kind"] for r in applied.records] == ["wrap", "append_copy"]
    assert applied.records[1]["node"] == "m.4.0"
    assert applied.records[0]["delta_out"] < 1e-12  # a mean of equal copies
    assert applied.records[1]["delta_out"] > 0  # a fresh copy, not made the identity here
