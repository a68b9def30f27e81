"""The specs of benchmarks/split_quality.py: each checks, and each baseline differs from its grown
arm only where the benchmark says (the split method; the widths at the ranges' high ends)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from growdsl import api, ir
from growdsl.lang import format_spec

SPECS = Path(__file__).parents[2] / "benchmarks" / "specs"
GROWN = {"digits": "digits_split", "spirals": "spirals_split", "rbf": "rbf_fast"}


def _load(name: str):
    return api.load(SPECS / f"{name}.grow")


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.grow")), ids=lambda p: p.stem)
def test_every_benchmark_spec_checks(path):
    api.check_file(path)


@pytest.mark.parametrize(
    ("task", "other", "method"),
    [
        ("digits", "digits_random", "random"),
        ("spirals", "spirals_random", "random"),
        ("rbf", "rbf_random", "random"),
        ("rbf", "rbf_exact", "exact"),
    ],
)
def test_other_split_arms_change_only_the_method(task, other, method):
    grown, arm = _load(GROWN[task]), _load(other)
    assert f"method: {method}" in format_spec(arm)
    same_model = format_spec(replace(arm, model=grown.model))
    assert same_model.replace(f"method: {method}", "method: fast") == format_spec(grown)


@pytest.mark.parametrize("task", sorted(GROWN))
def test_wide_arm_is_the_grown_arm_at_its_ranges_high_ends(task):
    grown, wide = _load(GROWN[task]), _load(f"{task}_wide")
    assert wide.grow is None and replace(wide, model=grown.model) == replace(grown, grow=None)
    graph = api.lower(grown)
    for node in graph.ops():
        if graph[node].get("width"):
            graph[node]["args"] = {**graph[node]["args"], "out": graph[node]["width"][1]}
    wide_graph = api.lower(wide)
    assert [wide_graph[n]["args"] for n in wide_graph.ops()] == [graph[n]["args"] for n in graph.ops()]
    assert ir.param_count(wide_graph) == ir.param_count(graph)
