"""PBT-NAS's exploit decisions: who is replaced, who the parents are."""

from __future__ import annotations

import math
import random

import pytest

from growdsl.search.pbt import fitness_of, plan_exploit, rank


def test_the_bottom_share_is_replaced_by_children_of_two_distinct_top_members_the_fitter_first():
    fitness = {m: f for m, f in enumerate([0.5, 0.9, 0.1, 0.7, 0.3, 0.8, 0.2, 0.6])}
    rng = random.Random(0)
    for _ in range(100):
        plan = plan_exploit(fitness, 0.25, "mix", rng)
        assert sorted(r.loser for r in plan) == [2, 6]  # the two least fit of eight
        for r in plan:
            assert {r.parent1, r.parent2} <= {1, 5} and r.parent1 != r.parent2
            assert fitness[r.parent1] > fitness[r.parent2]


def test_mutation_mode_has_one_parent_from_the_top_share():
    fitness = dict(enumerate([0.5, 0.9, 0.1, 0.7]))
    plan = plan_exploit(fitness, 0.5, "mutate", random.Random(0))
    assert [r.loser for r in plan] == [0, 2] and all(r.parent1 in (1, 3) and r.parent2 is None for r in plan)


def test_a_crashed_or_diverged_member_ranks_last():
    assert fitness_of(None) == -math.inf
    assert fitness_of({"acc": float("nan")}) == -math.inf
    assert fitness_of({"acc": None, "held_out_loss": 0.5}) == -0.5
    assert rank({0: 0.4, 1: -math.inf, 2: 0.9, 3: 0.4}) == [2, 0, 3, 1]


@pytest.mark.parametrize("size", [2, 3])
def test_small_populations_still_have_two_parents(size):
    fitness = {m: m / 10 for m in range(size)}
    (step,) = plan_exploit(fitness, 0.5, "mix", random.Random(0))
    assert step.loser == 0 and step.parent1 != step.parent2
