"""GradMax (docs/methods/gradmax.md): the gradient correlation is the gradient of a bypass from
the growing layer's input to the consumer's output; the new neurons' outgoing weights are its top
left-singular vectors, which make the gradient of their incoming weights largest among unit-norm
choices; with `fan_in: 0` the function is exactly unchanged, else by at most the stated bound."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from small_nets import assert_grow_mistake, small_net

from growdsl.grow.gradmax import GradMaxTransform, gradmax_directions
from growdsl.grow.newneurons.collect import collect_stats
from growdsl.grow.newneurons.sites import find_neuron_site
from growdsl.grow.step import apply_chosen
from growdsl.lang import parse_value

CLASSES = 5


def _net(body: str = "linear(4..12) as h tanh linear(5)", seed: int = 0):
    return small_net(body, (6,), 80, CLASSES, seed)


def _transform(options: str) -> GradMaxTransform:
    return GradMaxTransform.from_call(parse_value(f"gradmax({options})"))


def test_the_gradient_correlation_is_the_gradient_of_a_bypass_at_zero():
    net, (x, y) = _net()
    site = find_neuron_site(net.graph, "m.h")
    (stats,) = collect_stats(net.model, [site], x, y, F.cross_entropy)
    # a linear map B from h's input (with a 1 for the bias) added to the consumer's output
    bypass = torch.zeros(CLASSES, 7, dtype=torch.double, requires_grad=True)
    h = torch.cat([x, torch.ones(80, 1, dtype=torch.double)], 1)
    hook = net.model.module_at("m.2").register_forward_hook(lambda m, i, out: out + h @ bypass.T)
    try:
        (grad,) = torch.autograd.grad(F.cross_entropy(net.model(x), y), bypass)
    finally:
        hook.remove()
    torch.testing.assert_close(stats.correlation(), grad)


def test_new_neurons_maximise_the_gradient_norm_of_their_incoming_weights():
    """With zero incoming weights and outgoing columns ω (norm c), the incoming gradient of a tanh
    neuron (σ'(0) = 1) is Mᵀω: GradMax's choice gives (c s_i)² each, its score, and more in total
    than any random orthonormal choice of the same norm."""
    net, data = _net()
    transform = _transform("count: 3, fan_in: 0")
    cands = transform.propose(net, data, F.cross_entropy, torch.Generator().manual_seed(0))
    assert len(cands) == 3
    grown = apply_chosen(net, [(transform, cands)]).net
    new = slice(4, 7)

    def incoming_grad_norms(model) -> torch.Tensor:
        loss = F.cross_entropy(model(data[0]), data[1])
        gw, gb = torch.autograd.grad(loss, [model.module_at("m.h").weight, model.module_at("m.h").bias])
        return torch.cat([gw[new], gb[new, None]], 1).pow(2).sum(1)

    norms = incoming_grad_norms(grown.model)
    torch.testing.assert_close(norms, torch.tensor([c.score for c in cands], dtype=torch.double))
    columns = grown.model.module_at("m.2").weight
    c = float(columns[:, 4].detach().norm())
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        q, _ = torch.linalg.qr(torch.randn(CLASSES, 3, dtype=torch.double, generator=gen))
        with torch.no_grad():
            columns[:, new] = c * q
        assert float(incoming_grad_norms(grown.model).sum()) <= float(norms.sum()) * (1 + 1e-9)


def test_outgoing_columns_are_the_top_left_singular_vectors_at_scale_times_the_mean_column_norm():
    net, data = _net()
    transform = _transform("count: 2, scale: 0.5, fan_in: 0")
    cands = transform.propose(net, data, F.cross_entropy, torch.Generator().manual_seed(0))
    site = find_neuron_site(net.graph, "m.h")
    (stats,) = collect_stats(net.model, [site], *data, F.cross_entropy)
    u, s, _ = torch.linalg.svd(stats.correlation())
    mean_norm = float(net.model.module_at("m.2").weight.detach().norm(dim=0).mean())
    for i, cand in enumerate(cands):
        assert cand.detail["singular_value"] == pytest.approx(float(s[i]))
        torch.testing.assert_close(cand.payload.outgoing, 0.5 * mean_norm * u[:, i])
        assert float(cand.payload.incoming.abs().max()) == 0.0


def test_at_most_the_rank_of_the_correlation_is_proposed():
    """A cross-entropy's gradient sums to zero over the classes, so M has rank C − 1 at most."""
    correlation = torch.randn(3, 2, dtype=torch.double) @ torch.randn(2, 9, dtype=torch.double)
    assert len(gradmax_directions(correlation, 5).s) == 2


def test_zero_fan_in_leaves_the_function_unchanged_and_a_small_one_moves_it_within_its_bound():
    net, data = _net("linear(4..12) as h relu linear(5)")
    for fan_in in (0.0, 1e-3):
        transform = _transform(f"count: 3, fan_in: {fan_in}")
        cands = transform.propose(net, data, F.cross_entropy, torch.Generator().manual_seed(0))
        (line,) = apply_chosen(net, [(transform, cands)], probe=data[0]).records
        h = torch.cat([data[0], torch.ones(80, 1, dtype=torch.double)], 1)
        # |Δ output| <= Σ_k ‖ω_k‖_∞ |α_kᵀ h| (ReLU: 1-Lipschitz, relu(0) = 0), α_k = −fan_in v_k
        bound = sum(c.payload.outgoing.abs().max() * (h @ c.payload.incoming).abs() for c in cands)
        if fan_in == 0.0:
            assert line["delta_out"] <= 1e-15
        else:
            assert 0 < line["delta_out"] <= float(bound.max())
        assert line["detail"]["added"] == 3 and [n["rank"] for n in line["detail"]["neurons"]] == [0, 1, 2]


@pytest.mark.parametrize(
    ("model", "options", "message"),
    [
        ("flatten linear(8..32) as h relu linear(classes)", "scale: 0", "gradmax option 'scale'"),
        ("flatten linear(8..32) as h relu linear(classes)", "fan_in: -1", "gradmax option 'fan_in'"),
        ("flatten linear(8..32) as h relu linear(classes)", "sale: 1", "did you mean 'scale'"),
        ("flatten linear(8..32) as h sigmoid linear(classes)", "", "pass sigmoid"),
        ("flatten linear(8..32) as h bn relu linear(classes)", "", "pass bn"),
        ("conv(4..8, k: 3) as c relu flatten linear(classes)", "", "only linear layers"),
    ],
)
def test_mistakes_are_spec_errors_at_their_place(model, options, message):
    assert_grow_mistake(model, f"gradmax({options})", message)
