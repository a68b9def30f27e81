"""The path-level meta-controller's parts: the tree-LSTM's shapes, gradients that reach every
parameter, REINFORCE that learns a toy preference, and children that keep the base net's function."""

from __future__ import annotations

import torch

from growdsl import ir
from growdsl.compile import compile_graph
from growdsl.grow.net import Net
from growdsl.lang import parse_text
from growdsl.run.datasets import describe
from growdsl.search.controller import ACTORS, CellTree, Controller, RandomPolicy, TreeLSTM, distribution
from growdsl.search.decisions import Decision, build_child, cell_roots, log_prob, sample_edits
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
    tree = _tree(graph)
    generator = torch.Generator().manual_seed(0)
    decided, actors = [], set()
    while actors != set(ACTORS):  # children until every actor has decided once
        _, decisions = sample_edits(graph, tree, controller, controller.encoder(tree), generator)
        decided += decisions
        actors |= {d.actor for d in decisions}
    logp, _ = log_prob(controller, controller.encoder(tree), decided)
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
                "merge", i, tree.nodes[i], (True,) * 3, int(torch.multinomial(p, 1, generator=generator))
            )
            for i, p in zip(layers, probs, strict=True)
        ]

    before, baseline = add_share(), None
    for _ in range(30):
        with torch.no_grad():
            states = controller.encoder(tree)
        decided = [sample(states) for _ in range(8)]
        rewards = [sum(d.choice == add for d in ds) / len(ds) for ds in decided]
        baseline = reinforce(controller, adam, tree, decided, rewards, baseline)
    assert before < 0.45 and add_share() > 0.8


def test_the_reward_is_tan_of_accuracy_and_stays_finite():
    assert abs(reward(0.5) - 1.0) < 1e-12
    assert reward(0.0) == 0.0 and 600 < reward(1.0) < 700 and reward(0.9) < reward(0.95)


def test_a_sampled_child_computes_the_base_nets_function_at_zero_noise():
    graph = _graph()
    tree = _tree(graph)
    torch.manual_seed(0)
    base = Net(graph, compile_graph(graph))
    x = torch.randn(32, 1, 8, 8)
    with torch.no_grad():  # running statistics away from their defaults
        base.model.train()
        for _ in range(3):
            base.model(x * 2 + 1)
    base.model.eval()
    with torch.no_grad():
        expected = base.model(x)
    generator, changed = torch.Generator().manual_seed(3), 0
    for seed in range(5):
        edits, _ = sample_edits(graph, tree, RandomPolicy(), torch.zeros(0), generator)
        child, _ = build_child(base, edits, x, noise=0.0, seed=seed)
        child.model.eval()
        with torch.no_grad():
            assert (child.model(x) - expected).abs().max() < 1e-5
        changed += bool(edits) and ir.param_count(child.graph) != ir.param_count(graph)
    assert changed >= 3  # the children are different nets, not the base net again
