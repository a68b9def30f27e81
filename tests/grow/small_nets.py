"""Small float64 nets with seeded data, shared by the new-neuron baselines' tests (GradMax, TINY,
Net2Net): a `model m { body }` lowered for `shape`, its weights from `torch.manual_seed(seed)`,
and `rows` random inputs with labels below `classes` from a generator of the same seed."""

from __future__ import annotations

import torch

from growdsl.compile import compile_graph
from growdsl.grow.net import Net
from growdsl.ir import lower
from growdsl.lang import parse_text


def small_net(body: str, shape: tuple[int, ...], rows: int, classes: int, seed: int = 0):
    """The net and its `(x, y)` batch."""
    graph = lower(parse_text(f"model m {{ {body} }}", "t.grow"), shape, None)
    torch.manual_seed(seed)
    net = Net(graph, compile_graph(graph).double())
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, *shape, dtype=torch.double, generator=gen)
    y = torch.randint(0, classes, (rows,), generator=gen)
    return net, (x, y)


def assert_grow_mistake(model: str, call: str, message: str) -> None:
    """`call` in a grow block around `model` is a SpecError matching `message`, placed on its line."""
    import pytest

    from growdsl import api
    from growdsl.errors import SpecError

    text = f"data digits\nmodel m {{ {model} }}\ngrow {{ every 2 epochs\n {call} }}\n"
    with pytest.raises(SpecError, match=message) as err:
        api.check(parse_text(text, "t.grow"))
    assert err.value.span is not None and err.value.span.line == 4
