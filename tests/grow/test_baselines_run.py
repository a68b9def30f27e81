"""The baselines' shipped specs (specs/gradmax_mlp.grow, tiny_mlp.grow, net2net_mlp.grow) inside
real runs, shortened to two epochs with a growth step after each: they
grow, log one line per edit with the method's detail, replay to their final graph, and keep the
function where the method preserves it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from growdsl import api, lang
from growdsl.run import run

SPECS = Path(__file__).resolve().parents[2] / "specs"


def _short(name: str, text: str | None = None):
    text = text or (SPECS / name).read_text(encoding="utf-8")
    text = re.sub(r"every \d+ epochs", "every 1 epochs", text)
    text = re.sub(r"epochs \d+\n", "epochs 2\n", text)
    spec = lang.parse_text(text, name)
    return lang.apply_overrides(spec, ["data.test=0.8"])  # a fifth of the rows: seconds


@pytest.mark.parametrize(
    ("name", "transforms", "exact"),
    [
        ("gradmax_mlp.grow", {"gradmax"}, False),
        ("tiny_mlp.grow", {"tiny"}, False),
        ("net2net_mlp.grow", {"net2wider", "net2deeper"}, True),
    ],
)
def test_a_shipped_baseline_spec_grows_logs_and_replays(name, transforms, exact, tmp_path):
    result = run(_short(name), tmp_path / "r", quiet=True)
    grows = [r for r in result.history if r["event"] == "grow"]
    assert grows and {g["transform"] for g in grows} <= transforms
    assert all(g["params_after"] > g["params_before"] and g["detail"] for g in grows)
    if exact:  # copies and identity layers: the function up to float32 rounding
        assert max(g["delta_out"] for g in grows) < 1e-4
    assert api.replay_difference(tmp_path / "r") is None


def test_gradmax_with_zero_fan_in_keeps_the_function_inside_a_run(tmp_path):
    text = (SPECS / "gradmax_mlp.grow").read_text(encoding="utf-8").replace("fan_in: 1e-3", "fan_in: 0")
    result = run(_short("gradmax_mlp.grow", text), tmp_path / "r", quiet=True)
    grows = [r for r in result.history if r["event"] == "grow"]
    assert grows and all(g["delta_out"] < 1e-5 for g in grows)  # float32 sums in another order
