"""TINY (docs/methods/tiny.md): the closed form against least squares on a small case (the best
update of the existing weights, the new neurons' product, the decrease Σσ_k², better than random
rank-k choices), the linearised score against autograd and the loss change at a small γ, and the
function's change within its bound."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from small_nets import small_net

from growdsl.errors import SpecError
from growdsl.grow.net import Net
from growdsl.grow.newneurons.collect import SiteStats, collect_stats
from growdsl.grow.newneurons.sites import find_neuron_site
from growdsl.grow.step import apply_chosen
from growdsl.grow.tiny import TinyTransform, bottleneck, linear_decrease
from growdsl.lang import parse_text, parse_value

CLASSES = 4


def _net(body: str = "linear(3..12) as h tanh linear(4)", seed: int = 0):
    return small_net(body, (5,), 120, CLASSES, seed)


def _stats(net: Net, data) -> SiteStats:
    (stats,) = collect_stats(net.model, [find_neuron_site(net.graph, "m.h")], *data, F.cross_entropy)
    return stats


def test_the_closed_form_is_the_least_squares_fit_of_the_residual_and_its_decrease_is_sum_sigma_squared():
    net, data = _net()
    stats = _stats(net, data)
    h, b, g = stats.h, stats.b, stats.g
    m = h.shape[0]
    v = -m * g  # what each sample's pre-activation should move by
    full = bottleneck(stats, k=100, threshold=0.0)
    # the best update of the existing weights: least squares of v on b
    torch.testing.assert_close(full.update, torch.linalg.lstsq(b, v).solution)
    residual = v - b @ full.update
    # every neuron together: the least-squares fit of the residual on h
    theta = full.omega.T @ full.alpha  # [C, D]: Σ_k ω_k α_kᵀ
    torch.testing.assert_close(theta.T, torch.linalg.lstsq(h, residual).solution)

    def fit_error(t: torch.Tensor) -> float:
        return float((residual - h @ t.T).pow(2).sum() / m)

    base = float(residual.pow(2).sum() / m)
    gen = torch.Generator().manual_seed(0)
    for k in (1, 2):
        top = bottleneck(stats, k=k, threshold=0.0)
        decrease = base - fit_error(top.omega.T @ top.alpha)
        assert decrease == pytest.approx(float(top.sigma.pow(2).sum()), rel=1e-9)
        for _ in range(10):  # no random rank-k product, at its best scale, fits better
            a = torch.randn(k, h.shape[1], dtype=torch.double, generator=gen)
            w = torch.randn(k, g.shape[1], dtype=torch.double, generator=gen)
            fitted = h @ (w.T @ a).T
            best = float((residual * fitted).sum()) ** 2 / float(fitted.pow(2).sum()) / m
            assert 0 < best < decrease


def test_the_threshold_drops_small_singular_values():
    net, data = _net()
    stats = _stats(net, data)
    full = bottleneck(stats, k=100, threshold=0.0)
    cut = float(full.sigma[1]) * 1.0001  # keeps only the first
    assert len(bottleneck(stats, k=100, threshold=cut).sigma) == 1


def test_the_linear_score_is_the_derivative_of_the_loss_along_a_linear_bypass():
    net, data = _net()
    stats = _stats(net, data)
    found = bottleneck(stats, k=2, threshold=0.0)
    scores = linear_decrease(stats, found.alpha, found.omega)
    h = torch.cat([data[0], torch.ones(120, 1, dtype=torch.double)], 1)
    for k in range(2):
        t = torch.zeros((), dtype=torch.double, requires_grad=True)
        bypass = (h @ found.alpha[k])[:, None] * found.omega[k][None, :]
        hook = net.model.module_at("m.2").register_forward_hook(lambda m, i, out, p=bypass, t=t: out + t * p)
        try:
            (grad,) = torch.autograd.grad(F.cross_entropy(net.model(data[0]), data[1]), t)
        finally:
            hook.remove()
        assert float(scores[k]) == pytest.approx(-float(grad), rel=1e-9)


def test_at_a_small_gamma_the_score_predicts_the_loss_change_and_the_change_is_within_its_bound():
    """tanh(√γ αᵀh)·√γ ω ≈ γ ω αᵀh for small γ: the score (linearised) predicts the decrease. The
    consumer's output moves by at most γ Σ_k |ω_k| |α_kᵀh| (tanh: 1-Lipschitz, tanh(0) = 0)."""
    net, data = _net()
    transform = TinyTransform.from_call(parse_value("tiny(count: 2, gamma: 1e-4, threshold: 0)"))
    cands = transform.propose(net, data, F.cross_entropy, torch.Generator().manual_seed(0))
    assert len(cands) == 2 and all(c.detail["gamma"] == 1e-4 for c in cands)
    stats = _stats(net, data)
    applied = apply_chosen(net, [(transform, cands)], probe=data[0])
    with torch.no_grad():
        before = F.cross_entropy(net.model(data[0]), data[1])
        after = F.cross_entropy(applied.net.model(data[0]), data[1])
    assert float(before - after) == pytest.approx(sum(c.score for c in cands), rel=0.01)
    h = stats.h
    bound = sum(c.payload.outgoing.abs().max() * (h @ c.payload.incoming).abs() for c in cands)
    (line,) = applied.records
    assert 0 < line["delta_out"] <= float(bound.max())
    assert line["detail"]["gamma"] == 1e-4 and len(line["detail"]["neurons"]) == 2


def test_gamma_auto_takes_the_grid_value_that_decreases_the_loss_most():
    net, data = _net("linear(3..12) as h relu linear(4)")
    transform = TinyTransform.from_call(parse_value("tiny(count: 2)"))
    cands = transform.propose(net, data, F.cross_entropy, torch.Generator().manual_seed(0))
    search = cands[0].detail["gamma_search"]
    best = max(range(len(search["grid"])), key=lambda i: search["measured"][i])
    assert cands[0].detail["gamma"] == search["grid"][best] and search["measured"][best] > 0
    (line,) = apply_chosen(net, [(transform, cands[:2])]).records
    assert line["detail"]["gamma_search"] == search


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("gamma: 0", "tiny option 'gamma'"),
        ("gamma: fast", "tiny option 'gamma'"),
        ("threshold: -1", "tiny option 'threshold'"),
    ],
)
def test_option_mistakes_are_spec_errors_at_their_place(options, message):
    text = f"data digits\nmodel m {{ flatten linear(classes) }}\ngrow {{ tiny({options}) }}\n"
    spec = parse_text(text, "t.grow")
    with pytest.raises(SpecError, match=message) as err:
        TinyTransform.from_call(spec.grow.statements[-1].call)
    assert err.value.span is not None and err.value.span.line == 3
