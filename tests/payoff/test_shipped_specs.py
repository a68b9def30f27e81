"""`growdsl payoff` on every shipped spec that grows (issue #20: it must run on each): each is a
spec payoff can measure (checked, its arms settled: what payoff does before it trains), one is
measured whole for one seed, shortened by `--set` overrides to one growth step (every one on
digits with `-m benchmark`: the zoo's need the CIFAR files), and the task sequence is refused with
its reason and exit code 2."""

import subprocess
import sys
from pathlib import Path

import pytest

from growdsl import api, ir
from growdsl.errors import SpecError
from growdsl.grow.policy import GrowthPolicy
from growdsl.payoff.measure import plan

SPECS = Path(__file__).parents[2] / "specs"
CONTINUAL = SPECS / "firefly_continual.grow"


def _growing() -> list[Path]:
    every = sorted([*SPECS.glob("*.grow"), *SPECS.glob("zoo/*.grow")])
    return [p for p in every if api.load(p).grow is not None and api.load(p).search is None]


GROWING = _growing()
MEASURED = [p for p in GROWING if p != CONTINUAL]
ON_DIGITS = [p for p in MEASURED if p.parent == SPECS]  # the zoo's need the CIFAR files


def test_the_shipped_growing_specs_are_the_ones_this_file_covers():
    names = {p.name for p in GROWING}
    assert {"quickstart.grow", "firefly_continual.grow", "gradmax_mlp.grow", "pathlevel_cell.grow"} <= names
    assert {"split_mobilenetv1_cifar.grow", "firefly_vgg19_cifar.grow"} <= names
    assert len(ON_DIGITS) >= 9


@pytest.mark.parametrize("path", MEASURED, ids=lambda p: p.name)
def test_payoff_settles_the_arms_of_every_shipped_growing_spec(path):
    planned = plan(api.load(path), seeds=2, widths=3)
    first = planned.first_round()
    assert {t.arm for t in first} >= {"grown", "start"}
    assert (
        [t.seed for t in first if t.arm == "grown"]
        == planned.seeds
        == [planned.config.seed + i for i in (0, 1)]
    )


def _measure_shortened(path: Path, grows: bool = True):
    """One seed, a sweep of one width (the start net), 360 training rows, and just enough epochs
    for one growth step: every arm trains, and (`grows`) the grown net is another than the start
    net."""
    spec = api.load(path)
    every = GrowthPolicy.from_block(spec.grow).schedule.every
    assert every is not None  # the shipped specs name their period
    spec = api.load(path, [f"train.epochs={every + 1}", "data.test=0.8"])
    result = api.payoff_spec(spec, seeds=1, widths=1, workers=1)
    assert set(result.outcomes) >= {"grown", "final_scratch", "start"}
    grown, start = result.outcomes["grown"][0], result.outcomes["start"][0]
    assert not grows or ir.to_json(grown.graph) != ir.to_json(start.graph)
    assert result.outcomes["final_scratch"][0].params == grown.params >= start.params


def test_payoff_measures_a_shipped_growing_spec_whole():
    _measure_shortened(SPECS / "net2net_mlp.grow")


@pytest.mark.benchmark
@pytest.mark.parametrize("path", ON_DIGITS, ids=lambda p: p.name)
def test_payoff_measures_every_shipped_growing_spec_on_digits(path):
    """Every one (minutes in all: firefly's candidates on the CNN cost most), so not by default.
    Whether a step adds anything in so short a run is the transform's call: pathlevel's scores on
    a cell that has not learned yet (3 epochs on 360 rows) found no edit worth making."""
    _measure_shortened(path, grows=path.name != "pathlevel_cell.grow")


def test_a_task_sequence_is_refused_at_its_data_line_with_the_reason():
    with pytest.raises(SpecError, match="sequence of tasks") as caught:
        plan(api.load(CONTINUAL))
    assert caught.value.span.line == next(
        i for i, line in enumerate(CONTINUAL.read_text().splitlines(), 1) if line.startswith("data ")
    )
    proc = subprocess.run(
        [sys.executable, "-m", "growdsl", "payoff", str(CONTINUAL), "--seeds", "1", "--workers", "1"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "sequence of tasks" in proc.stderr and "Traceback" not in proc.stderr
