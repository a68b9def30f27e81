"""The pure pieces of benchmarks/growth_suite.py (benchmarks/suite_tasks.py): the synthetic
teachers, the equal-params width solver, and the arms' spec text. No training here."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import suite_tasks as st  # noqa: E402

from growdsl import api, ir  # noqa: E402


def test_rbf_teacher_is_the_toy_network_it_describes():
    teacher = st.RBFTeacher.make(5, seed=0)
    x = np.linspace(-4, 4, 7)[:, None]
    by_hand = sum(
        w * np.exp(-((a * x + b) ** 2) / 2) for a, b, w in zip(teacher.a, teacher.b, teacher.w, strict=True)
    )
    np.testing.assert_allclose(teacher(x), by_hand)
    assert np.sign(teacher.w).tolist() == [1, -1, 1, -1, 1]  # alternating bumps
    centres = -teacher.b / teacher.a
    assert np.all(np.diff(centres) > 0) and centres.min() > -3.5 and centres.max() < 3.5


def test_t1_teacher_has_narrow_separated_bumps_of_mixed_sign():
    # the stuck case needs bumps a student unit cannot slide between: each narrower (sigma = 1/a)
    # than a fifth of the gap to its neighbour, with outputs of both signs
    teacher = st.RBFTeacher.make(st.T1_TEACHER_UNITS, seed=0, width=st.T1_TEACHER_WIDTH)
    centres = -teacher.b / teacher.a
    assert np.all(1 / teacher.a < np.diff(centres).min() / 5)
    assert np.any(teacher.w > 0) and np.any(teacher.w < 0)


# Training-loss curves measured with the suite's settings (seed 0, the narrowest net, no growth):
# python benchmarks/growth_suite.py's MLP_TRAIN on the teacher task at 4-4 (30 epochs), and the
# CNN at width 4 (16 epochs). The old triggers never fired on them: the grown arms never grew.
TEACHER_4_LOSS = [
    1.3046,
    1.15,
    0.9454,
    0.784,
    0.6894,
    0.6366,
    0.6017,
    0.579,
    0.5621,
    0.5492,
    0.5382,
    0.5299,
    0.5243,
    0.5175,
    0.5144,
    0.5086,
    0.506,
    0.5017,
    0.4982,
    0.4955,
    0.4934,
    0.489,
    0.4848,
    0.4803,
    0.4771,
    0.4706,
    0.466,
    0.4593,
    0.4527,
    0.4464,
]
CNN_4_LOSS = [
    2.3373,
    2.2791,
    2.234,
    2.1796,
    2.1102,
    2.0405,
    1.9787,
    1.9182,
    1.8629,
    1.8093,
    1.7646,
    1.7144,
    1.6759,
    1.6391,
    1.6007,
    1.5643,
]


def _first_due(when: str, losses: list[float]) -> int | None:
    """The first epoch at which the grow block's trigger fires on this loss curve (no growth yet)."""
    from growdsl.grow.policy import GrowthPolicy
    from growdsl.lang import parse_text

    text = st.spec_text("spirals(n: 100)", "linear(4..8) tanh linear(classes)", "epochs 2", f"{when} split")
    schedule = GrowthPolicy.from_block(parse_text(text, "t").grow).schedule
    history = []
    for epoch, loss in enumerate(losses, 1):
        history.append({"event": "epoch", "epoch": epoch, "loss": loss})
        if schedule.due(epoch, history):
            return epoch
    return None


@pytest.mark.parametrize(
    ("when", "losses", "by"), [(st.T2_WHEN, TEACHER_4_LOSS, 15), (st.CNN_WHEN, CNN_4_LOSS, 12)]
)
def test_plateau_triggers_fire_within_the_epoch_budget(when, losses, by):
    assert _first_due(when, losses) <= by  # early enough to leave room for more steps


def test_the_old_triggers_did_not_fire():
    # the control: the triggers of the first full run, on the same curves
    assert _first_due("when plateau(patience: 3, min_delta: 2e-3)", TEACHER_4_LOSS) is None
    assert _first_due("when plateau(patience: 2, min_delta: 1e-3)", CNN_4_LOSS) is None


def test_teachers_are_deterministic_under_their_seed():
    a = st.RBFTeacher.make(5, seed=3).sample(50, seed=4, noise=0.1)
    b = st.RBFTeacher.make(5, seed=3).sample(50, seed=4, noise=0.1)
    np.testing.assert_array_equal(a[1], b[1])
    x1, y1 = st.mlp_teacher(200, dim=8, hidden=(16,), classes=4, seed=2)
    x2, y2 = st.mlp_teacher(200, dim=8, hidden=(16,), classes=4, seed=2)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


def test_mlp_teacher_uses_every_class():
    _, y = st.mlp_teacher(3000, dim=8, hidden=(32, 32), classes=4, seed=2)
    counts = np.bincount(y, minlength=4)
    assert counts.min() > 0.05 * len(y)  # no class the student could ignore


def test_teacher_table_loads_as_the_csv_data_set(tmp_path):
    x, y = st.RBFTeacher.make(3, seed=0).sample(40, seed=1)
    path = st.write_csv(tmp_path / "t.csv", x, y, "y")
    from growdsl.lang import parse_text
    from growdsl.run import datasets

    data = f'csv(path: "{path}", target: "y", regression: true, normalize: false, test: 0.25)'
    spec = parse_text(st.spec_text(data, "linear(1)", "epochs 1 loss mse"), "t")
    splits = datasets.load_data(spec.data, 0)
    rows = np.concatenate([splits.train[0].numpy(), splits.test[0].numpy()])
    targets = np.concatenate([splits.train[1].numpy(), splits.test[1].numpy()])
    order = np.argsort(rows[:, 0])
    np.testing.assert_allclose(rows[order], x[np.argsort(x[:, 0])], rtol=1e-6)  # float32, no normalising
    np.testing.assert_allclose(targets[order], y[np.argsort(x[:, 0])], rtol=1e-5, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(hs.integers(1, 200), hs.integers(1, 20), hs.integers(1, 20))
def test_width_solver_finds_the_nearest_params(width, inputs, outputs):
    def count(w: int) -> int:
        return st.mlp_params(inputs, [w, w], outputs)

    assert st.width_for_params(count(width), count) == width  # exact when the params are reachable
    target = count(width) + 1
    found = st.width_for_params(target, count)
    assert all(abs(count(found) - target) <= abs(count(w) - target) for w in range(1, 300))


def test_mlp_params_agrees_with_the_compiler():
    from growdsl.lang import parse_text

    spec = parse_text(
        st.spec_text("spirals(n: 100)", "linear(7) tanh linear(7) tanh linear(classes)", "epochs 1"), "t"
    )
    assert ir.param_count(api.check(spec).graph) == st.mlp_params(2, [7, 7], 2)


@pytest.mark.parametrize("arm", sorted(st.GROWN_ARMS))
def test_every_grown_arm_is_a_valid_spec(arm, monkeypatch):
    from firefly_quality import RandomGrowth

    from growdsl.grow import registry
    from growdsl.lang import parse_text

    # as the suite's workers do: the random-growth arm is the firefly benchmark's class
    monkeypatch.setitem(registry.IMPLEMENTED_TRANSFORMS, "randomgrow", RandomGrowth.from_call)
    monkeypatch.setitem(registry.KNOWN_TRANSFORMS, "randomgrow", "random growth (benchmark)")
    grow = f"when plateau(patience: 3) {st.AFTER_GROWTH} {st.GROWN_ARMS[arm].format(n='count: 1')}"
    text = st.spec_text("spirals(n: 100)", "linear(4..8) tanh linear(classes)", "epochs 2", grow)
    api.check(parse_text(text, "t"))


def _epoch(epoch: int, params: int, loss: float, acc: float) -> dict:
    return {"event": "epoch", "epoch": epoch, "params": params, "flops": params, "loss": loss, "acc": acc}


def test_stages_end_before_each_growth_step_and_at_the_last_epoch():
    import suite_report

    run = {
        "epochs": [
            _epoch(1, 10, 0.9, 0.5),
            _epoch(2, 10, 0.8, 0.6),
            _epoch(3, 20, 0.5, 0.7),
            _epoch(4, 20, 0.4, 0.8),
        ],
        # two records of one step (two layers grown at epoch 2) make one stage boundary
        "grows": [{"event": "grow", "epoch": 2}, {"event": "grow", "epoch": 2}],
        "rows": 100,
    }
    assert suite_report.stages(run, regression=False) == [(10, 0.8, 0.6), (20, 0.4, 0.8)]
    # FLOPs x samples summed up to the first epoch at the target: 10·100 + 10·100 + 20·100
    assert suite_report.compute_to_reach(run, 0.7) == 4000
    assert suite_report.compute_to_reach(run, 0.9) == float("inf")


def test_stuck_table_counts_scratch_and_grown_nets_above_the_threshold():
    import suite_report

    def run(loss: float, units: int) -> dict:
        return {"epochs": [_epoch(1, units * suite_report.RBF_PARAMS_PER_UNIT, loss, 0.0)], "grows": []}

    results = {
        ("T1", "rbf", "scratch", s, w): run(0.5 if s == 0 else 0.01, w) for s in range(2) for w in st.T1_SIZES
    }
    results |= {("T1", "rbf", "split fast", 0): run(0.2, 7), ("T1", "rbf", "split fast", 1): run(0.05, 9)}
    table = suite_report.stuck_table(results, variance=1.0)  # threshold 0.1
    assert "| split fast, from 3 units | 1/2 | 0.2000 (7) 0.0500 (9) |" in table
    assert f"| scratch {st.T1_TEACHER_UNITS} (teacher's size) | 1/2 | 0.5000 0.0100 |" in table
