"""`after_growth(warmup: N)`: the k-th batch after a growth step trains at k/N of the learning
rate, the schedule never sees it, and a run resumed in the middle of a ramp reproduces the
uninterrupted run bitwise."""

import copy

import torch

from growdsl import api
from growdsl.compile import compile_graph
from growdsl.lang import parse_text
from growdsl.run import resume, run
from growdsl.run.config import train_config
from growdsl.run.loop import TrainState, train_epoch
from growdsl.run.progress import TrainingProgress
from growdsl.run.warmup import scaled_lr, warmup_factors

SPEC = """\
data digits(test: 0.2)
model m {{ flatten linear(8..24) as h1 relu linear(classes) }}
train {{ epochs 4 batch 64 optimizer adam(lr: 0.01) schedule cosine seed 5 }}
grow {{ every 2 epochs {after} net2wider(count: 4) }}
"""


def test_the_kth_batch_after_a_step_trains_at_k_over_n_of_the_rate():
    grown_at_2 = [
        {"event": "epoch", "epoch": 1},
        {"event": "epoch", "epoch": 2},
        {"event": "grow", "epoch": 2},
    ]
    assert warmup_factors(grown_at_2, 2, 4, 6) == [1 / 6, 2 / 6, 3 / 6, 4 / 6]
    assert warmup_factors(grown_at_2, 3, 4, 6) == [5 / 6, 1.0, 1.0, 1.0]
    assert warmup_factors(grown_at_2, 2, 4, 0) == [1.0] * 4  # no warm-up
    assert warmup_factors(grown_at_2[:2], 2, 4, 6) == [1.0] * 4  # nothing grew yet


def test_a_warmed_up_batch_is_the_plain_batch_at_the_scaled_rate():
    spec = parse_text(SPEC.format(after=""), "w.grow")
    config = train_config(spec.train)
    graph = api.lower(spec)
    x, y = torch.randn(40, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 10
    torch.manual_seed(0)
    model = compile_graph(graph)

    def state(lr: float) -> TrainState:
        net = copy.deepcopy(model)
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
        return TrainState(graph, net, optimizer, None, torch.Generator().manual_seed(1), epoch=1,
                          history=[{"event": "grow", "epoch": 1}])  # fmt: skip

    warmed, plain = state(0.1), state(0.1 / 4)
    with TrainingProgress(False, 1, 1) as progress:
        train_epoch(warmed, (x, y), config, progress, warmup=4)  # 40 rows: one batch of the 64
        train_epoch(plain, (x, y), config, progress)
    for a, b in zip(warmed.model.parameters(), plain.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)
    assert warmed.optimizer.param_groups[0]["lr"] == 0.1  # the rate put back after the step


def test_scaled_lr_puts_back_the_exact_rate():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    with scaled_lr(optimizer, 1 / 3):
        assert optimizer.param_groups[0]["lr"] == 0.3 * (1 / 3)
    assert optimizer.param_groups[0]["lr"] == 0.3


def test_a_run_resumed_in_the_middle_of_a_ramp_reproduces_the_whole_run(tmp_path):
    # 1,437 training rows in batches of 64: 23 an epoch, so a ramp of 40 spans epochs 3 and 4
    spec = parse_text(SPEC.format(after="after_growth(warmup: 40)"), "w.grow")
    whole = run(spec, tmp_path / "whole", quiet=True)
    run(spec, tmp_path / "cut", quiet=True, epochs_limit=3)
    resumed = resume(tmp_path / "cut", quiet=True)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    plain = run(parse_text(SPEC.format(after=""), "w.grow"), tmp_path / "plain", quiet=True)
    assert [r["loss"] for r in plain.history if r["event"] == "epoch"][2:] != [
        r["loss"] for r in whole.history if r["event"] == "epoch"
    ][2:]  # the warm-up changes the epochs after the step, and only those
    assert [r["loss"] for r in plain.history if r["event"] == "epoch"][:2] == [
        r["loss"] for r in whole.history if r["event"] == "epoch"
    ][:2]
