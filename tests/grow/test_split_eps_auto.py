"""`split(eps: auto)`: the line search picks the largest ε of its grid whose measured loss decrease
agrees with the second-order prediction, scores and applies the splits at it, and the growth line
records it; bad values are spec errors at their place."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from growdsl import api
from growdsl.compile import compile_graph
from growdsl.errors import SpecError
from growdsl.grow.eps_search import AGREE, EPS_GRID
from growdsl.grow.net import Net
from growdsl.grow.split import SplitTransform
from growdsl.grow.step import apply_chosen
from growdsl.lang import parse_text

BODY = "flatten linear(8..32) as h1 tanh linear(8..32) as h2 tanh linear(classes)"


def _spec(options: str):
    return parse_text(f"data digits\nmodel m {{ {BODY} }}\ngrow {{ split({options}) }}\n", "t.grow")


def _trained_tanh_mlp() -> tuple[Net, tuple[torch.Tensor, torch.Tensor]]:
    """A smooth net part-way to convergence on a random teacher's labels (where the second-order
    model holds for small ε and fails for large ε)."""
    graph = api.lower(_spec("eps: auto"))
    torch.manual_seed(0)
    model = compile_graph(graph)
    x = torch.randn(256, *graph.input_shape)
    teacher = torch.randn(x[0].numel(), graph.classes)
    y = (x.flatten(1) @ teacher).tanh().argmax(1)
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(20):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return Net(graph, model), (x, y)


def _ratio(predicted: float, measured: float) -> float:
    return measured / predicted


def test_eps_auto_picks_the_largest_eps_where_the_measured_decrease_agrees_and_logs_it():
    net, data = _trained_tanh_mlp()
    transform = SplitTransform.from_call(_spec("eps: auto, samples: 256").grow.statements[-1].call)
    cands = transform.propose(net, data, F.cross_entropy, torch.Generator().manual_seed(0))
    search = cands[0].payload.search
    assert search.agrees and search.eps in EPS_GRID
    i = EPS_GRID.index(search.eps)
    lo, hi = AGREE
    assert lo <= _ratio(search.predicted[i], search.measured[i]) <= hi
    larger = zip(search.predicted[i + 1 :], search.measured[i + 1 :], strict=True)
    assert all(not lo <= _ratio(p, m) <= hi for p, m in larger)
    assert search.eps < EPS_GRID[-1]  # the model fails somewhere on the grid: the search decides
    # the candidates are scored and applied at the chosen ε: re-measure them on the same rows
    taken = sorted(cands, key=lambda c: c.score, reverse=True)[: transform.limit(net)]
    assert {c.payload.eps for c in cands} == {search.eps}
    applied = apply_chosen(net, [(transform, taken)])
    with torch.no_grad():
        before = float(F.cross_entropy(net.model.double()(data[0].double()), data[1]))
        after = float(F.cross_entropy(applied.net.model.double()(data[0].double()), data[1]))
    predicted = sum(c.score for c in taken)
    assert lo <= _ratio(predicted, before - after) <= hi
    for line in applied.records:
        assert line["detail"]["eps"] == search.eps
        assert line["detail"]["eps_search"]["eps"] == search.eps
        assert line["detail"]["eps_search"]["measured"][i] == pytest.approx(search.measured[i], rel=1e-5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("eps: fast", "a number >= 0, or auto"),
        ('eps: "auto"', "a number >= 0, or auto"),
        ("method: random, eps: auto", "method: random predicts none"),
    ],
)
def test_bad_eps_values_are_spec_errors_at_their_place(options, message):
    spec = _spec(options)
    with pytest.raises(SpecError) as err:
        SplitTransform.from_call(spec.grow.statements[-1].call)
    assert message in f"{err.value} (expected {err.value.expected})"
    span = err.value.span
    assert (span.line, span.col) == (3, 14 + options.index("eps") + len("eps: "))
