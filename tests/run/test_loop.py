"""The loop's pieces: batching, losses, evaluation and the after-epoch seam growth will use."""

from __future__ import annotations

import pytest
import torch

from growdsl.compile import compile_graph
from growdsl.ir import lower
from growdsl.lang import parse_text
from growdsl.run.config import build_optimizer, train_config
from growdsl.run.datasets import describe, load_data
from growdsl.run.loop import (
    TrainState,
    batches,
    compute_loss,
    evaluate,
    fit,
    seed_everything,
    steps_per_epoch,
)


@pytest.mark.parametrize("n, batch", [(100, 32), (97, 32), (33, 32), (1, 32), (64, 64), (65, 64)])
def test_batches_cover_every_sample_once_except_a_lone_last_one(n, batch):
    chunks = batches(n, batch, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert len(chunks) == steps_per_epoch(n, batch)
    seen = torch.cat(chunks).tolist()
    assert len(seen) == len(set(seen))
    assert len(seen) == (n - 1 if n % batch == 1 and n > batch else n)


def test_mse_on_class_indices_compares_with_one_hot_targets():
    out = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert compute_loss("mse", out, torch.tensor([0, 2])).item() == 0.0
    assert compute_loss("mse", out, torch.tensor([1, 2])).item() == pytest.approx(2 / 6)


def test_evaluate_counts_accuracy_over_every_eval_batch():
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
        model.bias.zero_()
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).repeat(1500, 1)
    y = torch.tensor([0, 0]).repeat(1500)
    _, acc = evaluate(model, (x, y), "cross_entropy")
    assert acc == 0.5


def test_after_epoch_hooks_see_each_epoch_and_their_records_are_logged_before_saving():
    spec = parse_text("data spirals(n: 100)\nmodel s { linear(4) relu linear(classes) }\n", "h.grow")
    info = describe(spec.data)
    config = train_config(spec.train)
    graph = lower(spec, info.input_shape, info.classes)
    shuffle = seed_everything(0)
    model = compile_graph(graph)
    state = TrainState(graph, model, build_optimizer(config.optimizer, model.parameters()), None, shuffle)
    logged, saved = [], []

    def grow(s: TrainState, record: dict) -> None:
        s.history.append({"event": "grow", "epoch": record["epoch"]})

    fit(state, load_data(spec.data, 0), config, stop_at=2, log=logged.extend,
        save=lambda s: saved.append(len(logged)), after_epoch=[grow])  # fmt: skip
    events = [(r["event"], r["epoch"]) for r in logged]
    assert events == [("epoch", 1), ("grow", 1), ("epoch", 2), ("grow", 2)]
    assert saved == [2, 4] and state.history == logged and state.epoch == 2
