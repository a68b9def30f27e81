"""The path-level meta-controller's parts: the tree-LSTM's shapes, gradients that reach every
parameter, REINFORCE that learns a toy preference, and children that keep the base net's function."""

from __future__ import annotations

import functools

import pytest
import torch

from growdsl import ir
from growdsl.compile import compile_graph
from growdsl.grow.net import Net
from growdsl.grow.pathlevel import sites
from growdsl.ir.edits import apply_in_place
from growdsl.lang import parse_text
from growdsl.run.datasets import describe
from growdsl.search.controller import ACTORS, CellTree, Controller, RandomPolicy, TreeLSTM, distribution
from growdsl.search.decisions import Decision, build_child, cell_roots, log_prob, replacement, sample_edits
from growdsl.search.pathlevel import reinforce, reward

CNN = """\
data digits(test: 0.2, val: 0.15)
block cell(c) {
    conv(c, k: 3) bn relu
    branch add { conv(c, k: 1) bn | identity }
}
model m { conv(6, k: 3) bn relu cell(6) as c1 maxpool cell(6) as c2 gap flatten linear(classes) }
"""


def _graph() -> ir.ArchGraph:
    spec = parse_text(CNN, "cnn.grow")
    info = describe(spec.data)
    return ir.lower(spec, info.input_shape, info.classes)


def _tree(graph: ir.ArchGraph) -> CellTree:
    return CellTree.of(graph, cell_roots(graph))


def test_the_controller_acts_on_the_first_use_of_each_cell():
    graph = _graph()
    assert cell_roots(graph) == ["m.c1"]
    tree = _tree(graph)
    assert tree.nodes[0] == "m.c1" and tree.parent[0] is None
    assert all(tree.parent[k] == i for i, kids in enumerate(tree.children) for k in kids)


def test_the_tree_lstm_gives_every_node_a_bottom_up_and_a_top_down_state():
    tree = _tree(_graph())
    states = TreeLSTM(hidden=5)(tree)
    assert states.shape == (len(tree.nodes), 10) and torch.isfinite(states).all()
    controller = Controller(hidden=5)
    for actor, choices in ACTORS.items():
        assert controller.logits(controller.encoder(tree), actor, 0).shape == (len(choices),)


def test_a_leafs_state_depends_on_its_siblings_through_the_top_down_pass():
    graph = _graph()
    other = graph.copy()
    other["m.c1.0"]["op"] = "sepconv"  # the first layer's token changes, the last leaf's does not
    encoder = TreeLSTM(hidden=4)
    a, b = encoder(_tree(graph)), encoder(_tree(other))
    leaf = len(_tree(graph).nodes) - 1
    assert not torch.allclose(a[leaf, 4:], b[leaf, 4:])  # top-down half: it sees the change
    assert torch.allclose(a[leaf, :4], b[leaf, :4])  # bottom-up half: only its own subtree


def test_a_decisions_log_probability_gradient_reaches_every_parameter():
    graph, controller = _graph(), Controller(hidden=8)
    generator = torch.Generator().manual_seed(0)
    decided, actors = [], set()
    while actors != set(ACTORS):  # children until every actor has decided once
        _, decisions = sample_edits(graph, controller, generator)
        decided += decisions
        actors |= {d.actor for d in decisions}
    logp, _ = log_prob(controller, decided)
    logp.backward()
    for name, p in controller.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_reinforce_on_a_toy_reward_learns_to_prefer_add_merges():
    tree = _tree(_graph())
    layers = [i for i, n in enumerate(tree.nodes) if n in ("m.c1.0", "m.c1.3.0.0")]
    torch.manual_seed(0)
    controller = Controller()
    adam = torch.optim.Adam(controller.parameters(), lr=6e-3)
    generator = torch.Generator().manual_seed(1)
    add = ACTORS["merge"].index("add")

    def add_share() -> float:  # the probability of `add` at the cell's first layer
        with torch.no_grad():
            return float(
                torch.softmax(controller.logits(controller.encoder(tree), "merge", layers[0]), 0)[add]
            )

    def sample(states: torch.Tensor) -> list[Decision]:  # a merge decision at each layer, all allowed
        probs = [distribution(controller.logits(states, "merge", i), (True,) * 3).probs for i in layers]
        return [
            Decision(
                "merge",
                i,
                tree.nodes[i],
                (True,) * 3,
                int(torch.multinomial(p, 1, generator=generator)),
                tree,
            )
            for i, p in zip(layers, probs, strict=True)
        ]

    before, baseline = add_share(), 0.0
    for _ in range(30):
        with torch.no_grad():
            states = controller.encoder(tree)
        decided = [sample(states) for _ in range(8)]
        rewards = [sum(d.choice == add for d in ds) / len(ds) for ds in decided]
        baseline = reinforce(controller, adam, decided, rewards, baseline)
    assert before < 0.45 and add_share() > 0.8


def test_the_reward_is_tan_of_accuracy_and_stays_finite():
    assert abs(reward(0.5) - 1.0) < 1e-12
    assert reward(0.0) == 0.0 and 600 < reward(1.0) < 700 and reward(0.9) < reward(0.95)


def _base() -> tuple[Net, torch.Tensor, torch.Tensor]:
    """The CNN with running statistics away from their defaults, a sample, its eval-mode output."""
    graph = _graph()
    torch.manual_seed(0)
    base = Net(graph, compile_graph(graph))
    x = torch.randn(32, 1, 8, 8)
    with torch.no_grad():
        base.model.train()
        for _ in range(3):
            base.model(x * 2 + 1)
    base.model.eval()
    with torch.no_grad():
        return base, x, base.model(x)


def _change(child: Net, x: torch.Tensor, expected: torch.Tensor) -> float:
    child.model.eval()
    with torch.no_grad():
        return float((child.model(x) - expected).abs().max())


class _NoPools(RandomPolicy):
    """Uniform decisions, except that an edge never becomes a pool (not the identity)."""

    def logits(self, states: torch.Tensor, actor: str, node: int) -> torch.Tensor:
        return torch.tensor([-30.0 if "pool" in c else 0.0 for c in ACTORS[actor]])


def test_a_sampled_child_without_a_pool_computes_the_base_nets_function_at_zero_noise():
    base, x, expected = _base()
    generator, changed = torch.Generator().manual_seed(3), 0
    for seed in range(4):
        edits, _ = sample_edits(base.graph, _NoPools(), generator)
        child, _ = build_child(base, edits, x, noise=0.0, seed=seed)
        assert _change(child, x, expected) < 1e-5
        changed += bool(edits) and ir.param_count(child.graph) != ir.param_count(base.graph)
    assert changed >= 3  # the children are different nets, not the base net again


def test_each_of_the_seven_edge_candidates_keeps_the_function_where_documented():
    base, x, expected = _base()
    node = "m.c1.3.1"  # the identity path of the cell's branch add: its input is after a relu
    assert len(ACTORS["replace"]) == 7
    for choice in ACTORS["replace"][1:]:
        edit = sites.every_use(base.graph, node, functools.partial(replacement, choice=choice))
        child, _ = build_child(base, [edit], x, noise=0.0, seed=0)
        ops = [child.graph[n].get("op") for n in child.graph.walk(node)]
        if "pool" in choice:  # not the identity, and not claimed to be
            assert _change(child, x, expected) > 1e-4 and ops == [choice.split("_")[1]]
        else:  # a conv-BN-ReLU layer, the identity on a non-negative input
            assert _change(child, x, expected) < 1e-5 and ops[-3:] == [choice.split("_")[1], "bn", "relu"]


def test_a_conv_bn_relu_edge_is_refused_on_a_signed_input():
    graph = _graph()
    signed = graph.copy()  # an identity between the first layer's bn and its relu
    apply_in_place(signed, sites.insert_identity(signed, "m.c1.0"))
    new = next(n for n in signed.walk("m.c1") if signed[n].get("op") == "identity" and n not in graph)
    assert replacement(signed, new, "1x1_conv") is None and replacement(signed, new, "3x3_maxpool")
    after = graph.copy()  # the search inserts after the relu, where the edge can be the identity
    apply_in_place(after, sites.insert_identity(after, "m.c1.0", after_activation=True))
    new = next(n for n in after.walk("m.c1") if after[n].get("op") == "identity" and n not in graph)
    assert replacement(after, new, "1x1_conv") is not None


def _sampled(controller, seed: int = 0) -> list[Decision]:
    """The decisions of one child that made at least one edit (so a later decision saw a changed cell)."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        edits, decisions = sample_edits(_graph(), controller, generator)
        if edits and len({d.tree for d in decisions}) > 1:
            return decisions


def test_the_encoder_reads_the_cell_as_the_earlier_decisions_left_it():
    torch.manual_seed(0)
    controller = Controller(hidden=6)
    base = _tree(_graph())
    decisions = _sampled(controller)
    assert decisions[0].tree == base  # the first decision sees the base cell
    later = next(d for d in decisions if d.tree != base)
    assert len(later.tree.nodes) > len(base.nodes)  # an edit before it grew the cell it reads
    # REINFORCE's log-probability reads each decision from its own tree's encoding
    logp, _ = log_prob(controller, decisions)
    by_hand = sum(
        distribution(controller.logits(controller.encoder(d.tree), d.actor, d.node), d.allowed).log_prob(
            torch.tensor(d.choice)
        )
        for d in decisions
    )
    assert torch.allclose(logp, by_hand)
    # read from the base cell instead, the same decisions have another probability
    fit = [d for d in decisions if d.tree != base and d.node < len(base.nodes)]
    stale = [Decision(d.actor, d.node, d.at, d.allowed, d.choice, base) for d in fit]
    assert not torch.allclose(log_prob(controller, stale)[0], log_prob(controller, fit)[0])


def test_the_actors_are_mlps_with_a_hidden_layer_of_500():
    controller = Controller(hidden=4)
    for actor, choices in ACTORS.items():
        shapes = [tuple(p.shape) for p in controller.actors[actor].parameters()]
        assert shapes == [(500, 8), (500,), (len(choices), 500), (len(choices),)]


def test_reinforce_moves_the_baseline_first_and_clips_the_gradient_at_40():
    torch.manual_seed(0)
    controller = Controller(hidden=6)
    decided = [_sampled(controller, seed) for seed in range(2)]
    rewards, start = [300.0, 10.0], 50.0
    moved = start + 0.95 * (sum(rewards) / 2 - start)  # the authors' update, before R - b
    # the same loss by hand, its gradient clipped to norm 40 by hand
    copy = Controller(hidden=6)
    copy.load_state_dict(controller.state_dict())
    loss = torch.zeros(())
    for ds, r in zip(decided, rewards, strict=True):
        logp, entropy = log_prob(copy, ds)
        loss = loss - (r - moved) * logp - 1e-2 * entropy
    (loss / 2).backward()
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in copy.parameters()]
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    assert norm > 40  # rewards in the hundreds: the clip bites
    before = [p.detach().clone() for p in controller.parameters()]
    sgd = torch.optim.SGD(controller.parameters(), lr=1.0)  # a plain step shows the gradient itself
    assert reinforce(controller, sgd, decided, rewards, start) == pytest.approx(moved)
    for p, b, g in zip(controller.parameters(), before, grads, strict=True):
        assert torch.allclose(b - p.detach(), g * 40 / norm, atol=1e-6)


def test_reinforce_takes_no_step_when_every_child_scored_the_same():
    torch.manual_seed(0)
    controller = Controller(hidden=6)
    decided = [_sampled(controller, seed) for seed in range(2)]
    before = [p.detach().clone() for p in controller.parameters()]
    adam = torch.optim.Adam(controller.parameters(), lr=0.1)
    assert reinforce(controller, adam, decided, [5.0, 5.0], 1.0) == pytest.approx(1.0 + 0.95 * 4.0)
    assert all(torch.equal(p, b) for p, b in zip(controller.parameters(), before, strict=True))


class _GrowEverything(_NoPools):
    """A policy that inserts, merges by add and replaces by a 1x1 conv wherever it may (never by
    a pool: where a conv edge is refused, on a signed input, the identity stays)."""

    def logits(self, states: torch.Tensor, actor: str, node: int) -> torch.Tensor:
        wanted = {"insert": "yes", "merge": "add", "replace": "1x1_conv"}[actor]
        logits = super().logits(states, actor, node)
        return logits.index_fill(0, torch.tensor(ACTORS[actor].index(wanted)), 30.0)


def test_decisions_recurse_to_depth_3_into_nested_branches_that_compile_and_keep_the_function():
    base, x, expected = _base()
    edits, decisions = sample_edits(base.graph, _GrowEverything(), torch.Generator().manual_seed(0))
    child, _ = build_child(base, edits, x, noise=0.0, seed=0)
    graph = child.graph

    def branches_above(node: str) -> int:
        parent, count = graph.parent(node), 0
        while parent is not None:
            count, parent = count + (graph.kind(parent) == "branch"), graph.parent(parent)
        return count

    # inside the cell's own branch add (1 level): an identity inserted after the 1x1 conv's layer
    # and merged (depth 2), an identity inserted after each of its paths and merged (depth 3), and
    # no deeper: the authors' max_depth 3, the layer's own merge being depth 1
    assert max(branches_above(n) for n in graph.walk("m.c1")) == 1 + 2
    assert list(ir.from_json(ir.to_json(graph)).walk()) == list(graph.walk())  # it serialises as it is
    assert _change(child, x, expected) < 1e-5  # every edge a conv-BN-ReLU on a non-negative input
