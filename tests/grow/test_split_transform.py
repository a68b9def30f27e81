"""`split(...)` as a growth transform: options, where it acts, function preservation at eps 0,
the predicted loss change of a real split, and signed splitting where positive splits cannot help."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from growdsl import api
from growdsl.errors import SpecError
from growdsl.grow.net import Net
from growdsl.grow.split import SplitTransform
from growdsl.grow.step import apply_chosen
from growdsl.ir import added_cost, lower
from growdsl.lang import parse_text, parse_value


def _net(body: str, input_shape: tuple[int, ...], classes: int = 3, seed: int = 0) -> Net:
    torch.manual_seed(seed)
    graph = lower(parse_text(f"model m {{ {body} }}", "t.grow"), input_shape, classes)
    return Net(graph, api.build_model(graph).double())


def _split(text: str = "split()") -> SplitTransform:
    return SplitTransform.from_call(parse_value(text))


def _data(shape: tuple[int, ...], n: int = 64, classes: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=gen, dtype=torch.float64), torch.randint(
        0, classes, (n,), generator=gen
    )


def _propose_and_apply(
    net: Net, split: SplitTransform, data, loss_fn=F.cross_entropy, take: int | None = None
):
    cands = split.propose(net, data, loss_fn, torch.Generator().manual_seed(0))
    cands = sorted(cands, key=lambda c: c.score, reverse=True)[: take or split.limit(net)]
    return cands, apply_chosen(net, [(split, cands)])


PRESERVED = {
    "linear": ("linear(4..8) as p tanh linear(classes)", (5,)),
    "conv": ("conv(3..6, k: 3) as p gelu flatten linear(classes)", (2, 5, 5)),
    "linear_bn": ("linear(4..8) as p bn sigmoid linear(classes)", (5,)),
    "conv_bn_pool": ("conv(3..6) as p bn relu maxpool flatten linear(classes)", (2, 4, 4)),
    "sepconv": ("sepconv(3..6) as p tanh conv(2) flatten linear(classes)", (2, 4, 4)),
    "concat": (
        "branch concat { linear(3..6) as p tanh | linear(2) tanh } linear(4..8) as q silu linear(classes)",
        (5,),
    ),
}


@pytest.mark.parametrize("method", ["exact", "fast", "signed", "random"])
@pytest.mark.parametrize("case", sorted(PRESERVED))
def test_split_with_zero_eps_preserves_outputs(case, method):
    body, shape = PRESERVED[case]
    net = _net(body, shape)
    x, y = _data(shape)
    net.model.train()
    for _ in range(2):  # give BN non-trivial running statistics
        net.model(x)
    net.model.eval()
    before = net.model(x)
    # scores vanish with eps (ΔL ∝ ε²), so candidates come from eps 0.01 and eps 0 applies them
    cands = _split(f"split(method: {method})").propose(net, (x, y), F.cross_entropy, torch.Generator())
    assert cands, "some neuron should have a split that helps"
    applied = apply_chosen(net, [(_split(f"split(eps: 0, method: {method})"), cands)])
    assert (
        applied.net.graph[applied.records[0]["node"]]["args"]["out"]
        > net.graph[applied.records[0]["node"]]["args"]["out"]
    )
    applied.net.model.eval()
    torch.testing.assert_close(applied.net.model(x), before, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(net.model(x), before)  # the old net is untouched


def test_layer_reaching_branch_add_is_reported_not_growable():
    net = _net("linear(4) tanh branch add { linear(4..8) as p tanh | identity } linear(classes)", (4,))
    sites, skipped = _split().sites(net.graph)
    node = net.graph.by_label("p")[0]
    assert node not in [s.node for s in sites]
    assert "branch add" in skipped[node]


def test_sites_skip_fixed_widths_and_say_why():
    net = _net("linear(4) as a tanh linear(4..8) as b linear(3..5) as c tanh linear(classes)", (4,))
    sites, skipped = _split().sites(net.graph)
    assert [s.node for s in sites] == ["m.c"]
    assert "fixed" in skipped["m.a"] and "activation" in skipped["m.b"]


def test_on_narrows_to_labels_and_a_transparent_label_means_its_producer():
    net = _net("linear(4..8) as a tanh as act linear(4..8) as b tanh linear(classes)", (4,))
    sites, _ = _split("split(on: [act])").sites(net.graph)
    assert [s.node for s in sites] == ["m.a"]
    with pytest.raises(SpecError, match="no node is labelled 'bb'"):
        _split("split(on: [bb])").sites(net.graph)


def test_loss_change_of_one_split_matches_second_order_prediction():
    """Full batch, float64: ΔL ≈ (ε²/2) λ_min for the positive split (Liu et al. 2019)."""
    net = _net("linear(6..12) as p tanh linear(classes)", (4,), seed=1)
    x, y = _data((4,), n=128, seed=1)
    net.model.eval()
    before = F.cross_entropy(net.model(x), y)
    for method in ("exact", "fast"):
        eps = 1e-3
        cands, applied = _propose_and_apply(
            net, _split(f"split(eps: {eps}, method: {method}, samples: 128)"), (x, y), take=1
        )
        lam = cands[0].detail["eigenvalue"]
        assert lam < 0 and cands[0].score == pytest.approx(-0.5 * eps * eps * lam)
        applied.net.model.eval()
        change = float(F.cross_entropy(applied.net.model(x), y).detach() - before.detach())
        assert change == pytest.approx(0.5 * eps * eps * lam, rel=0.1)


def _stable_net():
    """Every hidden neuron is splitting-stable: tanh at u > 0 has σ'' < 0 and the loss wants every
    neuron's output larger (g < 0), so w = g σ'' > 0 and each S_i is positive semi-definite."""
    net = _net("linear(3..6) as p tanh linear(1)", (2,), classes=1, seed=0)
    with torch.no_grad():
        p, head = net.model.module_at("m.p"), net.model.module_at("m.2")
        p.weight.uniform_(0.2, 0.8)
        p.bias.fill_(0.3)
        head.weight.fill_(0.5)
        head.bias.zero_()
    x = torch.rand(100, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = net.model(x).detach() + 1.0
    return net, (x, y)


def test_positive_split_finds_nothing_where_every_neuron_is_stable():
    net, data = _stable_net()
    assert _split("split(method: exact)").propose(net, data, F.mse_loss, torch.Generator()) == []


@pytest.mark.parametrize("options", ["scheme: two", "scheme: three", "scheme: two, solver: exact"])
def test_signed_split_lowers_the_loss_where_positive_splits_cannot(options):
    net, (x, y) = _stable_net()
    before = F.mse_loss(net.model(x), y).detach()
    cands, applied = _propose_and_apply(
        net, _split(f"split(method: signed, eps: 0.1, {options})"), (x, y), F.mse_loss
    )
    assert cands and all(
        c.detail["scheme"].startswith("signed") and c.detail["eigenvalue"] > 0 for c in cands
    )
    after = F.mse_loss(applied.net.model(x), y).detach()
    assert after < before
    predicted = sum(c.score for c in cands)
    assert float(before - after) == pytest.approx(predicted, rel=0.25)


def test_signed_three_adds_two_neurons_per_split():
    net, data = _stable_net()
    cands, applied = _propose_and_apply(
        net, _split("split(method: signed, scheme: three, count: 1)"), data, F.mse_loss
    )
    assert len(cands) == 1 and len(cands[0].edit.added) == 2
    assert applied.net.graph["m.p"]["args"]["out"] == 5


def test_limit_is_frac_of_splittable_neurons_or_count():
    net = _net("linear(8..16) tanh linear(4..8) tanh linear(4) tanh linear(classes)", (4,))
    assert _split().limit(net) == 3  # 0.25 of 8 + 4
    assert _split("split(frac: 0.5)").limit(net) == 6
    assert _split("split(count: 5)").limit(net) == 5


def test_candidates_cost_what_one_more_neuron_costs():
    net = _net("linear(4..8) as p bn tanh linear(classes)", (5,))
    cands = _split("split(method: exact)").propose(net, _data((5,)), F.cross_entropy, torch.Generator())
    costs = [added_cost(net.graph, c.edit) for c in cands]
    assert cands and all(params == 6 + 2 + 3 for params, _ in costs)  # row + bias, bn γ β, head column
    assert all(flops == 2 * 5 + 2 * 3 for _, flops in costs)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("split(methd: fast)", "did you mean 'method'"),
        ("split(method: slow)", "bad value slow"),
        ("split(frac: 0)", "bad value 0"),
        ("split(frac: 0.2, count: 3)", "frac or count"),
        ("split(c: 2)", "method: signed only"),
        ("split(method: exact, iters: 3)", "fast solver only"),
        ("split(method: random, tol: 0.1)", "fast solver only"),
        ("split(method: random, samples: 64)", "does not apply to method: random"),
        ("split(on: 3)", "bad value 3"),
        ("split(0.25)", "named options only"),
    ],
)
def test_bad_split_options_are_spec_errors_at_their_place(text, message):
    with pytest.raises(SpecError, match=message) as info:
        _split(text)
    assert info.value.span is not None


def _random_picks(net: Net, seed: int, split: SplitTransform) -> list[tuple[str, int]]:
    cands = split.propose(net, _data((5,)), F.cross_entropy, torch.Generator().manual_seed(seed))
    best = sorted(cands, key=lambda c: c.score, reverse=True)[: split.limit(net)]
    return sorted((c.node, c.detail["neuron"]) for c in best)


def test_random_split_offers_every_neuron_with_a_random_unit_direction():
    net = _net("linear(4..8) as p bn tanh linear(3..6) as q tanh linear(classes)", (5,))
    cands = _split("split(method: random)").propose(net, _data((5,)), F.cross_entropy, torch.Generator())
    assert sorted((c.node, c.detail["neuron"]) for c in cands) == [("m.p", i) for i in range(4)] + [
        ("m.q", i) for i in range(3)
    ]
    assert all(c.score > 0 and len(c.edit.added) == 1 and c.detail["scheme"] == "positive" for c in cands)
    assert {c.payload.direction.numel() for c in cands if c.node == "m.p"} == {5 + 1}  # row and bias
    torch.testing.assert_close(
        torch.stack([c.payload.direction.norm() for c in cands]), torch.ones(7, dtype=torch.float64)
    )
    exact = _split("split(method: exact)").propose(net, _data((5,)), F.cross_entropy, torch.Generator())
    assert {(c.node, added_cost(net.graph, c.edit)) for c in cands} >= {
        (c.node, added_cost(net.graph, c.edit)) for c in exact
    }


def test_random_split_picks_differ_across_seeds_and_repeat_under_one():
    net = _net("linear(8..16) as p tanh linear(8..16) as q tanh linear(classes)", (5,))
    split = _split("split(method: random, count: 3)")
    picks = [_random_picks(net, seed, split) for seed in range(4)]
    assert all(len(p) == 3 for p in picks)
    assert len({tuple(p) for p in picks}) > 1
    assert _random_picks(net, 2, split) == picks[2]


def test_random_split_moves_the_copies_apart_by_eps():
    net = _net("linear(4..8) as p tanh linear(classes)", (5,))
    cands, applied = _propose_and_apply(net, _split("split(method: random, eps: 0.1, count: 1)"), _data((5,)))
    (cand,) = cands
    weight = applied.net.model.module_at("m.p").weight.detach()
    bias = applied.net.model.module_at("m.p").bias.detach()
    theta = torch.cat([weight, bias[:, None]], dim=1)
    torch.testing.assert_close(theta[cand.detail["neuron"]] - theta[4], 0.2 * cand.payload.direction)
    assert "eigenvalues" not in applied.records[0]["detail"]


def test_random_split_in_a_run_adds_count_neurons_per_step_within_the_range(tmp_path):
    text = """\
data wave(n: 200, freq: 2)
model m { linear(3..5) as h rbf linear(1) }
train { epochs 4 batch 50 loss mse optimizer adam(lr: 0.01) seed 1 }
grow { every 1 epochs
split(method: random, count: 1) }
"""
    result = api.run_spec(parse_text(text, "t.grow"), tmp_path / "r", quiet=True)
    grows = [r for r in result.history if r["event"] == "grow"]
    assert [g["epoch"] for g in grows] == [1, 2]  # then the range's high end, 5, is reached
    assert [g["detail"]["width"] for g in grows] == [4, 5]
    assert result.graph["m.h"]["args"]["out"] == 5


def _splits(device: str):
    from growdsl.grow.splitting.schemes import POSITIVE, NeuronSplits

    return NeuronSplits(
        decrease=torch.tensor([0.1, 0.3, -0.2, 0.2], device=device),
        scheme=torch.zeros(4, dtype=torch.long, device=device),
        direction=torch.zeros(4, 5, device=device),
        eigenvalue=torch.tensor([-0.1, -0.3, 0.2, -0.2], device=device),
        schemes=(POSITIVE,),
    )


def _small_graph():
    from growdsl.ir import lower
    from growdsl.lang import parse_text

    return lower(parse_text("model m { flatten linear(4..8) as h tanh linear(3) }"), (1, 2, 2), 3)


def test_a_layer_proposes_its_best_neurons_up_to_the_limit():
    from growdsl.grow.split import _best_neurons

    assert _best_neurons(_splits("cpu"), _small_graph(), "m.h", limit=2) == [1, 3]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_best_neurons_ranks_on_the_device_of_the_scores():
    # regression: the per-scheme neuron counts were built on the CPU and indexed with the
    # scores' device, which broke splitting under --device cuda
    from growdsl.grow.split import _best_neurons

    assert _best_neurons(_splits("cuda"), _small_graph(), "m.h", limit=2) == [1, 3]
