"""PBT-NAS's exploit decisions: who is replaced, who the parents are."""

from __future__ import annotations

import math
import random

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


def test_a_population_of_two_copies_its_better_member_and_three_mixes_two_parents():
    (two,) = plan_exploit({0: 0.0, 1: 0.1}, 0.5, "mix", random.Random(0))
    assert (two.loser, two.parent1, two.parent2) == (0, 1, None)  # the loser is no parent of its own child
    (three,) = plan_exploit({0: 0.0, 1: 0.1, 2: 0.2}, 0.25, "mix", random.Random(0))
    assert three.loser == 0 and (three.parent1, three.parent2) == (2, 1)


def test_every_crashed_member_is_replaced_by_children_of_members_that_did_not_crash():
    fitness = {0: -math.inf, 1: 0.5, 2: -math.inf, 3: 0.7, 4: 0.6, 5: -math.inf, 6: 0.4, 7: 0.3}
    plan = plan_exploit(fitness, 0.25, "mix", random.Random(0))
    assert sorted(r.loser for r in plan) == [0, 2, 5]  # the bottom quarter (2, 5), and 0, crashed too
    assert all({r.parent1, r.parent2} <= {3, 4} for r in plan)
    assert plan_exploit(dict.fromkeys(range(4), -math.inf), 0.25, "mix", random.Random(0)) == []


def test_searl_weight_mutation_changes_only_weight_matrices_and_leaves_its_input_as_it_was():
    import torch

    from growdsl.search.inherit import searl_weight_mutation

    weights = {"a.weight": torch.ones(40, 30), "a.bias": torch.ones(40), "b.weight": torch.ones(20, 10)}
    before = {k: v.clone() for k, v in weights.items()}
    changed = [searl_weight_mutation(weights, random.Random(seed)) for seed in range(20)]
    assert all(torch.equal(weights[k], before[k]) for k in weights)
    assert all(torch.equal(c["a.bias"], before["a.bias"]) for c in changed)  # biases are never mutated
    moved = [(c[k] != 1).float().mean().item() for c in changed for k in ("a.weight", "b.weight")]
    assert max(moved) > 0 and max(moved) <= 0.2  # at most ~ n / rows < 0.1 of the entries, plus noise
    assert all(c[k].abs().max() <= 1e6 for c in changed for k in c)
