"""`growdsl payoff`: every arm trained, paired by seed, the JSON as documented, the paired t as
computed by hand, and user mistakes as errors with exit code 2."""

import json
import math
import subprocess
import sys

import pytest

from growdsl import api, ir
from growdsl.payoff import arms
from growdsl.payoff.measure import BACKWARD_FACTOR
from growdsl.payoff.stats import paired, summarize

TINY = """data spirals(n: 160, noise: 0.2, turns: 1)
model m { linear(4..12) as h1 tanh linear(4..12) as h2 tanh linear(classes) }
train { epochs 3 batch 32 optimizer adam(lr: 1e-2) seed 3 }
grow { every 1 epochs until params > 200 split(frac: 0.5, eps: 0.1, method: fast) }
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    path = tmp_path_factory.mktemp("payoff") / "tiny.grow"
    path.write_text(TINY)
    return api.payoff_spec(api.load(path), seeds=2, widths=2, workers=1)


def test_every_arm_has_a_value_per_seed_in_the_json(result):
    out = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert out["seeds"] == [3, 4]
    assert set(out["arms"]) == {"grown", "final_scratch", "uniform", "start", "sweep"}
    for arm in out["arms"].values():
        assert set(arm) >= {"test_acc", "train_loss", "params", "compute"}
        assert all(len(v) == 2 for v in arm.values())
        assert all(0.0 <= a <= 1.0 for a in arm["test_acc"])
    assert [m["widths"] for m in out["sweep"]] == [[4, 4], [12, 12]]


def test_final_scratch_is_the_grown_architecture_and_start_the_ungrown_one(result):
    grown, scratch, start = (result.outcomes[a] for a in ("grown", "final_scratch", "start"))
    assert [o.params for o in scratch] == [o.params for o in grown]
    assert all(g.params > s.params for g, s in zip(grown, start, strict=True))
    assert [o.params for o in start] == [ir.param_count(o.graph) for o in start]


def test_the_paired_t_is_the_hand_computed_one(result):
    a, b = result.values("grown", "test_acc"), result.values("start", "test_acc")
    d = [x - y for x, y in zip(a, b, strict=True)]
    mean = (d[0] + d[1]) / 2
    sd = abs(d[0] - d[1]) / math.sqrt(2)  # two values: s = |d0 - d1| / sqrt(2)
    p = result.paired("start")
    assert p.mean == pytest.approx(mean)
    if sd > 0:
        assert p.t == pytest.approx(mean / (sd / math.sqrt(2)))
        assert json.loads(json.dumps(result.to_json()))["paired"]["start"]["t"] == pytest.approx(p.t)


def test_paired_t_and_interval_on_a_small_case():
    p = paired([0.9, 0.8, 0.7], [0.85, 0.8, 0.6])  # differences 0.05, 0, 0.1: mean 0.05, sd 0.05
    assert p.mean == pytest.approx(0.05)
    assert p.sd == pytest.approx(0.05)
    assert p.t == pytest.approx(0.05 / (0.05 / math.sqrt(3)))
    half = 4.302652729911275 * 0.05 / math.sqrt(3)  # t_{0.975, 2}
    assert (p.low, p.high) == (pytest.approx(0.05 - half), pytest.approx(0.05 + half))
    assert paired([1.0], [0.5]).t is None
    assert summarize([1.0, 3.0]).sd == pytest.approx(math.sqrt(2))


def test_compute_is_three_forward_flops_per_sample_summed_over_epochs(result):
    train_rows = 128  # 160 rows, 20 % test
    start = result.outcomes["start"][0]
    assert start.compute == BACKWARD_FACTOR * ir.flops(start.graph) * train_rows * 3
    grown = result.outcomes["grown"][0]
    assert start.compute < grown.compute < result.outcomes["final_scratch"][0].compute


def test_the_uniform_arm_has_about_the_grown_params(result):
    for grown, uniform in zip(result.outcomes["grown"], result.outcomes["uniform"], strict=True):
        step = arms.widths_of(uniform.graph)[0]  # one neuron more in both layers changes params by ~2w
        assert abs(uniform.params - grown.params) <= 2 * step + 8


def test_fraction_for_params_finds_the_nearest_uniform_net(tmp_path):
    path = tmp_path / "s.grow"
    path.write_text(TINY)
    start = api.lower(api.load(path))
    for target in (60, 150, 400):
        t = arms.fraction_for_params(start, target)
        got = ir.param_count(arms.at_fraction(start, t))
        widths = range(1, 80)
        nearest = min(
            (ir.param_count(_uniform(start, w)) for w in widths), key=lambda p: (abs(p - target), p)
        )
        assert abs(got - target) <= abs(nearest - target) + 2 * max(
            arms.widths_of(arms.at_fraction(start, t))
        )


def _uniform(graph, width):
    out = graph.copy()
    for node in arms.width_ranges(graph):
        out[node]["args"] = {**out[node]["args"], "out": width}
    return out


def test_a_spec_without_grow_block_is_an_error_with_exit_code_2(tmp_path):
    path = tmp_path / "plain.grow"
    path.write_text(TINY.split("grow {")[0])
    proc = subprocess.run(
        [sys.executable, "-m", "growdsl", "payoff", str(path), "--seeds", "1"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "has no grow block" in proc.stderr and "Traceback" not in proc.stderr
