"""Growth statistics that are not finite skip the step with a `grow_skipped` line, never a crash
(growdsl/grow/guard.py)."""

from __future__ import annotations

import functools

import pytest
import torch

from growdsl import api
from growdsl.grow.policy import GrowthPolicy
from growdsl.lang import parse_text
from growdsl.run.config import build_optimizer, train_config
from growdsl.run.loop import TrainState, compute_loss, seed_everything

MODEL = """
data spirals(n: 200)
model m { linear(8..32) as h1 relu linear(8..32) as h2 relu linear(classes) }
train { epochs 4 optimizer sgd(lr: 0.1) seed 0 }
"""
GROWS = {
    "split": "split(frac: 0.5, eps: 0.01, method: {method})",
    "firefly": "firefly(wider: 4, eps: 0.01)",
}


def _state_and_hook(grow: str):
    spec = parse_text(MODEL + f"grow {{ every 1 epochs\n {grow} }}\n")
    config = train_config(spec.train, regression=False)
    shuffle = seed_everything(0)
    graph = api.lower(spec)
    model = api.build_model(graph)
    optimizer = build_optimizer(config.optimizer, model.parameters())
    state = TrainState(graph, model, optimizer, None, shuffle, epoch=1)
    return state, functools.partial(
        GrowthPolicy.from_block(spec.grow).hook,
        loss_fn=functools.partial(compute_loss, "cross_entropy"),
        make_optimizer=functools.partial(build_optimizer, config.optimizer),
        make_schedule=lambda _optimizer, _epochs: None,
        seed=0,
        epochs=4,
    )


def _train(poison: float | None):
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    if poison is not None:
        x[3, 0] = poison
    return x, torch.randint(0, 2, (64,), generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize(
    "grow",
    [GROWS["split"].format(method="exact"), GROWS["split"].format(method="fast"), GROWS["firefly"]],
    ids=["split-exact", "split-fast", "firefly"],
)
@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_a_growth_step_on_nonfinite_statistics_is_skipped_and_logged(grow, poison):
    state, make_hook = _state_and_hook(grow)
    before = {k: v.clone() for k, v in state.model.state_dict().items()}
    make_hook(_train(poison))(state, {})
    assert [r["event"] for r in state.history] == ["grow_skipped"]
    line = state.history[0]
    assert line["epoch"] == 1 and line["transform"] == grow.split("(")[0] and line["reason"]
    after = state.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_a_growth_step_on_finite_statistics_still_grows():
    state, make_hook = _state_and_hook(GROWS["split"].format(method="exact"))
    make_hook(_train(None))(state, {})
    assert {r["event"] for r in state.history} == {"grow"}
