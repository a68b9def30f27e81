"""Firefly descent: candidates preserve the function at eps = 0, the one-pass Taylor scores match
the loss changes of the candidates applied one at a time, options are checked at their places."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from growdsl import api
from growdsl.compile import compile_graph
from growdsl.errors import SpecError
from growdsl.grow.firefly import FireflyTransform
from growdsl.grow.firefly.augment import augment
from growdsl.grow.firefly.transform import Split
from growdsl.grow.net import Net
from growdsl.grow.step import apply_chosen
from growdsl.grow.surgery import carry, incoming_keys, scale_outgoing_columns
from growdsl.ir.edits import Widen
from growdsl.lang import parse_text

MLP = (
    "flatten linear(6..20) as h1 tanh linear(6..20) as h2 tanh repeat 1..3 { linear(6) relu } linear(classes)"
)
CNN = (
    "conv(4..12, k: 3) as c1 bn relu maxpool(2) conv(4..12, k: 3) as c2 relu "
    "repeat 1..2 { branch add { conv(4) bn relu conv(4) bn | identity } relu } flatten linear(classes)"
)
SEPARATE = "flatten linear(6..20) as h1 tanh branch concat { linear(5) tanh | identity } linear(classes)"


def _setup(body: str, options: str = "", seed: int = 0):
    spec = parse_text(f"data digits\nmodel m {{ {body} }}\ngrow {{ firefly({options}) }}\n", "t.grow")
    graph = api.lower(spec)
    torch.manual_seed(seed)
    model = compile_graph(graph).double()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(96, *graph.input_shape, dtype=torch.double, generator=gen)
    y = torch.randint(0, graph.classes, (96,), generator=gen)
    model.train()
    with torch.no_grad():
        model(x)  # BN statistics away from their defaults
    model.eval()
    transform = FireflyTransform.from_call(spec.grow.statements[-1].call)
    return Net(graph, model), transform, (x, y)


def _loss(net: Net, data) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(net.model(data[0]), data[1]))


def _with_eps(transform: FireflyTransform, eps: float) -> FireflyTransform:
    return dataclasses.replace(transform, options={**transform.options, "eps": eps})


def _by_kind(candidates, kind):
    return [c for c in candidates if c.detail["kind"] == kind]


def _without_offset(cand):
    """A split candidate with u = 0: the neuron and its copy both at θ, half the column each."""
    split = cand.payload
    zero_bias = None if split.u_bias is None else torch.zeros_like(split.u_bias)
    return dataclasses.replace(cand, payload=Split(split.neuron, torch.zeros_like(split.u), zero_bias))


def _split_at_gate(net: Net, cand, g: float) -> Net:
    """The split as the augmented net scores it at gate `g`: the neuron keeps θ and `1 − g` of its
    columns, two copies at `θ ± u` take `g/2` each; at g = 1 it computes the applied split."""
    node, split = cand.node, cand.payload
    grown, done = carry(net, Widen(node, (split.neuron, split.neuron)))
    state = grown.model.state_dict()
    weight_key, bias_key = incoming_keys(grown.graph, node)
    plus, minus = done.new_neurons
    with torch.no_grad():
        state[weight_key][plus] += split.u.to(state[weight_key])
        state[weight_key][minus] -= split.u.to(state[weight_key])
        if bias_key is not None:
            state[bias_key][plus] += split.u_bias.to(state[bias_key])
            state[bias_key][minus] -= split.u_bias.to(state[bias_key])
    scale_outgoing_columns(grown, node, {split.neuron: 1 - g, plus: g / 2, minus: g / 2})
    return grown


@pytest.mark.parametrize("body", [MLP, CNN], ids=["mlp", "cnn"])
def test_every_candidate_kind_at_zero_eps_leaves_outputs_unchanged(body):
    net, transform, data = _setup(body, "wider: 3, candidates: 3, deeper: 1, steps: 3, samples: 64")
    cands = transform.propose(net, data, F.cross_entropy, torch.Generator().manual_seed(1))
    assert {c.detail["kind"] for c in cands} == {"new", "split", "deeper"}
    still = _with_eps(transform, 0.0)
    # a split is applied whole (θ ± u, half the column each): exact only with u = 0, where it is
    # the halving of the neuron's outgoing weights between two equal copies
    cands = [_without_offset(c) if c.detail["kind"] == "split" else c for c in cands]
    with torch.no_grad():
        before = net.model(data[0])
        for kind in ("new", "split", "deeper"):
            grown = apply_chosen(net, [(still, _by_kind(cands, kind))]).net
            assert grown.graph is not net.graph
            torch.testing.assert_close(grown.model(data[0]), before, rtol=0, atol=1e-12)
        grown = apply_chosen(net, [(still, cands)]).net
        torch.testing.assert_close(grown.model(data[0]), before, rtol=0, atol=1e-12)


@pytest.mark.parametrize("body", [MLP, CNN, SEPARATE], ids=["mlp", "cnn", "concat"])
def test_the_augmented_net_with_gates_off_is_the_current_net(body):
    net, transform, data = _setup(body, "wider: 4, candidates: 4, deeper: 2")
    plans, repeats = transform.plan(net, torch.Generator().manual_seed(0))
    aug = augment(net, plans, repeats, data[0], 0.01, torch.Generator().manual_seed(0))
    gates = torch.zeros_like(aug.scales)
    with torch.no_grad():
        out = torch.func.functional_call(aug.net.model, aug.parameters(gates), (data[0],))
        torch.testing.assert_close(out, net.model(data[0]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("body", [MLP, CNN, SEPARATE], ids=["mlp", "cnn", "concat"])
def test_stage_one_parameters_are_the_gated_ones_at_the_applied_gates_bit_for_bit(body):
    # stage 1 folds the constant gates into per-column factors computed once; the scoring pass
    # gates piece by piece: both must give the same tensors and the same gradients
    net, transform, data = _setup(body, "wider: 4, candidates: 4, deeper: 2, eps: 0.3")
    plans, repeats = transform.plan(net, torch.Generator().manual_seed(0))
    aug = augment(net, plans, repeats, data[0], 0.3, torch.Generator().manual_seed(0))
    folded, gated = aug.parameters(), aug.parameters(aug.scales.clone())
    assert folded.keys() == gated.keys() and aug.consumed
    assert all(torch.equal(folded[k], gated[k]) for k in folded)
    grads = []
    for params in (folded, gated):
        out = torch.func.functional_call(aug.net.model, params, (data[0],))
        (grad,) = torch.autograd.grad(F.cross_entropy(out, data[1]), aug.flat)
        grads.append(grad)
    assert torch.equal(*grads)


@pytest.mark.parametrize("body", [MLP, CNN], ids=["mlp", "cnn"])
def test_stage_one_gradients_are_those_of_one_leaf_per_learned_tensor_bit_for_bit(body):
    # the learned tensors live in one flat leaf (one optimizer update) and the penalty is summed
    # over most of it at once: each gradient must still be what one leaf per tensor gives
    net, transform, data = _setup(body, "wider: 4, candidates: 4, deeper: 1")
    plans, repeats = transform.plan(net, torch.Generator().manual_seed(0))
    aug = augment(net, plans, repeats, data[0], 0.01, torch.Generator().manual_seed(0))
    (flat,) = torch.autograd.grad(aug.objective(data[0], data[1], F.cross_entropy), aug.flat)
    leaves = {name: t.detach().clone().requires_grad_(True) for name, t in aug.learned.items()}
    loss = aug.loss(None, data[0], data[1], F.cross_entropy, leaves)  # then the penalty, as before
    penalty = sum(
        (1.0 if name.split(".")[1] in ("u", "ub") or name.startswith("b") else 1e-2) * t.pow(2).sum()
        for name, t in leaves.items()
    )
    loss = loss + 1e-2 * penalty
    apart = torch.autograd.grad(loss, list(leaves.values()))
    assert any(name.endswith(".u") for name in leaves)
    assert torch.equal(flat, torch.cat([g.reshape(-1) for g in apart]))


@pytest.mark.parametrize("body", [MLP, CNN, SEPARATE], ids=["mlp", "cnn", "concat"])
def test_one_pass_scores_equal_each_candidate_applied_alone(body):
    """The augmented pass's score of every candidate is −s ∂L/∂g, s its applied gate (ε for a new
    neuron or layer, 1 for a split, applied whole), from the right (a new layer's ReLU may sit at
    its kink): the forward difference of the loss with that candidate alone at a tiny gate h. The
    loss difference is ~1e-13, so float64 round-off (~1e-16 of the loss, times s/h) bounds what
    can be resolved: abs 1e-11 (1e-8 for a split, whose s is 1, not ε = 1e-3)."""
    net, transform, data = _setup(
        body, "wider: 3, candidates: 3, deeper: 1, steps: 5, eps: 0.001, samples: 96"
    )
    cands = transform.propose(net, data, F.cross_entropy, torch.Generator().manual_seed(2))
    h = 1e-7
    base = _loss(net, data)
    for cand in cands:
        if cand.detail["kind"] == "split":
            alone = (base - _loss(_split_at_gate(net, cand, h), data)) / h
            assert alone == pytest.approx(cand.score, rel=1e-3, abs=1e-8), cand.detail
            continue
        moved = apply_chosen(net, [(_with_eps(transform, h), [cand])]).net
        alone = transform.eps * (base - _loss(moved, data)) / h
        assert alone == pytest.approx(cand.score, rel=1e-3, abs=1e-11), cand.detail


@pytest.mark.parametrize("body", [MLP, CNN], ids=["mlp", "cnn"])
def test_the_taylor_score_predicts_the_loss_change_at_a_small_eps_within_ten_percent(body):
    net, transform, data = _setup(
        body, "wider: 4, candidates: 4, deeper: 1, steps: 5, eps: 0.001, samples: 96"
    )
    cands = transform.propose(net, data, F.cross_entropy, torch.Generator().manual_seed(3))
    base = _loss(net, data)
    for kind in ("new", "deeper", "split"):
        best = max(_by_kind(cands, kind), key=lambda c: abs(c.score))
        if kind == "split":  # scored along its gate; at g = ε the loss changes by ε times the score
            actual = (base - _loss(_split_at_gate(net, best, transform.eps), data)) / transform.eps
        else:
            actual = base - _loss(apply_chosen(net, [(transform, [best])]).net, data)
        assert actual == pytest.approx(best.score, rel=0.1), kind


def test_stage_one_raises_the_best_score():
    net, transform, data = _setup(MLP, "wider: 6, candidates: 0, deeper: 0, samples: 96, lr: 0.01")
    lazy = dataclasses.replace(transform, options={**transform.options, "steps": 0})
    rng = torch.Generator
    untrained = max(c.score for c in lazy.propose(net, data, F.cross_entropy, rng().manual_seed(4)))
    trained = max(c.score for c in transform.propose(net, data, F.cross_entropy, rng().manual_seed(4)))
    assert trained > untrained


def test_candidates_respect_room_and_on_labels():
    net, transform, data = _setup(
        "flatten linear(6..8) as h1 tanh linear(6..20) as h2 tanh linear(classes)", "wider: 5, on: [h1]"
    )
    cands = transform.propose(net, data, F.cross_entropy, torch.Generator().manual_seed(0))
    assert {c.node for c in cands} == {"m.h1"}
    assert len(_by_kind(cands, "new")) == 2  # the room left in 6..8
    assert transform.limit(net) == 1  # 30 % of h1's 6 neurons


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("widr: 4", "did you mean 'wider'"),
        ("eps: -1", "firefly option 'eps'"),
        ("wider: 2.5", "firefly option 'wider'"),
        ("frac: 0.2, count: 3", "frac or count"),
        ("wider: 0, candidates: 0, deeper: 0", "proposes nothing"),
        ("on: [3]", "firefly option 'on'"),
    ],
)
def test_option_mistakes_are_spec_errors_at_their_place(options, message):
    spec = parse_text(
        f"data digits\nmodel m {{ flatten linear(classes) }}\ngrow {{ firefly({options}) }}\n", "t.grow"
    )
    with pytest.raises(SpecError, match=message) as err:
        FireflyTransform.from_call(spec.grow.statements[-1].call)
    assert err.value.span is not None and err.value.span.line == 3


@pytest.mark.filterwarnings("ignore:Full backward hook")  # the gates are the only inputs needing grad
def test_the_scoring_pass_computes_no_denormal_numbers():
    """CPUs compute denormals (nonzero floats under 1.2e-38 in float32) many times slower, on every
    thread; at gates of 1e-30 the scoring pass's gradients fell into that range and the pass took
    3-4 times as long. Here with the loss scaled by 1e-6 (the small gradients of a trained net), no
    activation or gradient the pass computes is a denormal."""
    net, transform, data = _setup(MLP, "wider: 3, candidates: 2, deeper: 1, steps: 1, samples: 64")
    net.model.float()
    x, y = (t.float() if t.is_floating_point() else t for t in data)
    plans, repeats = transform.plan(net, torch.Generator().manual_seed(0))
    aug = augment(net, plans, repeats, x, 0.01, torch.Generator().manual_seed(0))
    tiny = torch.finfo(torch.float32).tiny
    denormal = []

    def check(*tensors):
        for t in tensors:
            if torch.is_tensor(t) and t.is_floating_point():
                denormal.append(int(((t != 0) & (t.abs() < tiny)).sum()))

    def forward_hook(_module, args, out):
        check(*args, out)

    def backward_hook(_module, grad_in, grad_out):
        check(*grad_in, *grad_out)

    handles = [m.register_forward_hook(forward_hook) for m in aug.net.model.modules()]
    handles += [m.register_full_backward_hook(backward_hook) for m in aug.net.model.modules()]
    try:
        aug.scores(x[:64], y[:64], lambda out, target: 1e-6 * F.cross_entropy(out, target))
    finally:
        for h in handles:
            h.remove()
    assert denormal and sum(denormal) == 0
