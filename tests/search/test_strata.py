"""PBT's stratified initial population (growdsl/search/strata.py, docs/methods/pbt_nas.md, "The
initial population"): every value of every gene as often as the population allows, the same
population for a seed in any process, and a member whose pick breaks a `where:` bound redrawn
within it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from growdsl import ir
from growdsl.ir.edits import subtree_json
from growdsl.lang import parse_text
from growdsl.search.constraints import Constraint, satisfied
from growdsl.search.driver import run_search
from growdsl.search.hyper import Space
from growdsl.search.space import sample_member
from growdsl.search.strata import Strata, balanced

POPULATION = 16
SPEC = """\
data spirals(n: 120, val: 0.2)
model m {{
    linear(4..9) as a
    choice {{ tanh | relu | sigmoid }}
    linear({{8, 16, 32}}) tanh
    repeat 0..2 {{ linear(6) tanh }}
    linear(classes)
}}
train {{
    epochs 1 batch {{16, 32, 64}} optimizer sgd(lr: log(1e-3..1e-1), momentum: {{0.0, 0.9}}) seed 4 device cpu
}}
search {search}
"""
PBT = f"pbt(population: {POPULATION}, every: 1, workers: 1)"
RANDOM = f"random(trials: {POPULATION}, workers: 1)"


def _spread(counts: Counter, values: range) -> int:
    return max(counts[v] for v in values) - min(counts[v] for v in values)


@pytest.mark.parametrize("count", [1, 2, 3, 5, 7, 16, 40, 10**12])
def test_a_pool_holds_each_value_as_often_as_the_population_allows(count):
    for seed in range(20):
        pool = balanced(count, POPULATION, random.Random(seed))
        assert len(pool) == POPULATION and all(0 <= i < count for i in pool)
        if count > POPULATION:  # more values than members: each at most once
            assert len(set(pool)) == POPULATION
        else:
            assert _spread(Counter(pool), range(count)) <= 1


def _first_population(tmp_path: Path, search: str = PBT) -> list[tuple]:
    """The first members of a search stopped before its first leg: their genes, member by member."""
    text = SPEC.format(search=search)
    run = run_search(parse_text(text, "s.grow"), tmp_path, quiet=True, legs_limit=0, in_process=True)
    return _drawn(run.dir)


def _drawn(run_dir: Path) -> list[tuple]:
    state = _state(run_dir)
    return [_genes(state, m) for m in sorted(state["members"])]


def _state(run_dir: Path) -> dict:
    return torch.load(run_dir / "search_state.pt", weights_only=True)


def _genes(state: dict, member: int) -> tuple:
    graph = ir.from_json(state["members"][member]["graph"])
    values = state["hparams"][member]
    return (
        graph["m.a"]["args"]["out"],
        graph["m.1"]["chosen"],
        graph["m.2"]["args"]["out"],
        len(graph.children("m.4")),
        values["batch"],
        values["optimizer.momentum"],
    )


def test_a_pbt_searchs_first_members_hold_every_value_of_every_gene_as_often_as_the_population_allows(
    tmp_path,
):
    members = _first_population(tmp_path / "pbt")
    assert len(members) == POPULATION
    genes = list(zip(*members, strict=True))
    ranges = [range(4, 10), range(3), (8, 16, 32), range(3), range(3), range(2)]
    for gene, values in zip(genes, ranges, strict=True):
        assert _spread(Counter(gene), values) <= 1, gene
    # independent draws (random search's, one a trial) are rarely this even at every gene at once
    graph = ir.lower(parse_text(SPEC.format(search=RANDOM), "s.grow"), (2,), 2)
    rng = random.Random(0)
    independent = [sample_member(graph, rng) for _ in range(POPULATION)]
    drawn = [
        [m["m.a"]["args"]["out"] for m in independent],
        [m["m.1"]["chosen"] for m in independent],
        [m["m.2"]["args"]["out"] for m in independent],
        [len(m.children("m.4")) for m in independent],
    ]
    assert any(_spread(Counter(g), v) > 1 for g, v in zip(drawn, ranges[:4], strict=True))


DRAW = """\
import json, random, sys
from growdsl import ir
from growdsl.ir.edits import subtree_json
from growdsl.lang import parse_text
from growdsl.search.space import sample_member
from growdsl.search.strata import Strata

graph = ir.lower(parse_text(sys.stdin.read(), "s.grow"), (2,), 2)
rng = random.Random(4)
strata = Strata(16, rng)
members = [sample_member(graph, rng, strata.member(i)) for i in range(16)]
print(json.dumps([subtree_json(m, m.root) for m in members], sort_keys=True))
"""


def test_a_fixed_seed_draws_the_same_first_population_in_another_process():
    """The draws of `Population.start` (stratified members from the seed's generator) in two
    processes with other string hash orders; without torch, so the second process starts fast."""
    runs = []
    for hash_seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        command = [sys.executable, "-c", DRAW]
        done = subprocess.run(command, input=SPEC.format(search=PBT), env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout))
    assert runs[0] == runs[1] and len({json.dumps(m) for m in runs[0]}) > 1


def test_a_member_whose_stratified_pick_breaks_a_bound_is_redrawn_within_it():
    spec = parse_text(SPEC.format(search=PBT), "s.grow")
    graph = ir.lower(spec, (2,), 2)
    bound = (Constraint("params", "<=", 300.0, "params <= 300"),)
    space = Space(spec, graph, bound, None, regression=False, device=None)
    rng, strata = random.Random(0), Strata(POPULATION, random.Random(1))
    kept = redrawn = 0
    for index in range(POPULATION):
        pick = strata.member(index)
        picked = sample_member(graph, rng, pick)  # the pick: its pools made, it draws nothing more
        draft = space.draw(rng, pick)
        assert satisfied(draft.graph, bound)
        if satisfied(picked, bound):
            kept += 1
            assert subtree_json(draft.graph, graph.root) == subtree_json(picked, graph.root)
        else:
            redrawn += 1
    assert kept and redrawn  # both branches of the rule ran
