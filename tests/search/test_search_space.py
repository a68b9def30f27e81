"""What a search space says beyond the architecture: open train settings drawn with it (random
search, PBT's explore step, evolution's mutation) and `where:` bounds every member satisfies. The
held-out specs (`specs/hparam_search.grow`, `specs/evolution_search.grow`) run, shrunk with
`--set`, in this process; regularized evolution removes the oldest member each cycle and a
stopped evolution resumes to the uninterrupted one's log and winner."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from growdsl import api
from growdsl.errors import GrowDSLError, SpecError
from growdsl.lang import load, parse_text
from growdsl.search.driver import resume_search, run_search

SPECS = Path(__file__).parents[2] / "specs"


def _log(run_dir: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run_dir / "search.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k != "time"} for line in lines]


def _members(log: list[dict]) -> list[dict]:
    return [line for line in log if line["event"] == "evaluate"]


def _within_hparam_search(hparams: dict) -> bool:
    return (
        hparams["batch"] in (32, 64)
        and 1e-3 <= hparams["optimizer.lr"] <= 3e-1
        and 0.5 <= hparams["optimizer.momentum"] <= 0.95
    )


def test_random_search_draws_train_settings_within_their_distributions_and_every_member_within_where(
    tmp_path,
):
    spec = api.load(SPECS / "hparam_search.grow", ["train.epochs=1", "search.trials=4", "search.workers=1"])
    run = run_search(spec, tmp_path / "run", quiet=True, in_process=True)
    members = _members(_log(run.dir))
    assert len(members) == 4
    assert all(_within_hparam_search(m["hparams"]) and m["params"] <= 6000 for m in members)
    assert len({m["hparams"]["optimizer.lr"] for m in members}) == 4  # drawn, not one value
    best = _log(run.dir)[-1]["member"]
    drawn = next(m["hparams"] for m in members if m["member"] == best)
    final = load(run.dir / "final.grow")  # the winner's values, written into a runnable spec
    setting = {s.name: s.value for s in final.train.settings}
    assert setting["batch"].value == drawn["batch"]
    lr = next(a.value.value for a in setting["optimizer"].args if a.key == "lr")
    assert math.isclose(lr, drawn["optimizer.lr"])
    state = torch.load(run.dir / "search_state.pt", weights_only=True)
    assert list(state["members"]) == [best]  # a trained trial's payload is kept only while it leads
    own = parse_text(state["members"][best]["spec"], "m.grow")  # its own spec, its values written in
    assert next(s.value.value for s in own.train.settings if s.name == "batch") == drawn["batch"]


def test_pbt_perturbs_a_childs_settings_and_its_optimizer_trains_with_them(tmp_path):
    text = """\
data spirals(n: 200, val: 0.2)
model m { linear(8..24) tanh linear(classes) }
train { epochs 2 batch 32 optimizer sgd(lr: log(1e-3..1e-1), momentum: {0.0, 0.9}) seed 1 device cpu }
search pbt(population: 4, every: 1, replace: 0.25, workers: 1, where: params <= 400)
"""
    run = run_search(parse_text(text, "p.grow"), tmp_path / "run", quiet=True, in_process=True)
    log = _log(run.dir)
    exploit = next(line for line in log if line["event"] == "exploit")
    parent = next(m for m in _members(log) if m["member"] == exploit["parents"][0])
    assert parent["hparams"]["optimizer.momentum"] in (0.0, 0.9)
    lr = exploit["hparams"]["optimizer.lr"]
    assert 1e-3 <= lr <= 1e-1 and exploit["hparams"]["optimizer.momentum"] in (0.0, 0.9)
    child = next(m for m in _members(log) if m["member"] == exploit["child"])
    assert child["hparams"] == exploit["hparams"] and child["params"] <= 400
    state = torch.load(run.dir / "search_state.pt", weights_only=True)
    group = state["members"][exploit["child"]]["optimizer"]["param_groups"][0]
    assert math.isclose(group["lr"], lr) and group["momentum"] == exploit["hparams"]["optimizer.momentum"]
    assert all(m["params"] <= 400 for m in _members(log))


def test_a_bound_no_member_can_satisfy_is_an_error_naming_it(tmp_path):
    text = """\
data spirals(n: 100, val: 0.2)
model m { linear(8..24) tanh linear(classes) }
train { epochs 1 seed 1 device cpu }
search random(trials: 2, where: [params <= 100k, params < 10])
"""
    with pytest.raises(SpecError, match=r"where: params < 10") as error:
        run_search(parse_text(text, "w.grow"), tmp_path / "run", quiet=True, in_process=True)
    assert error.value.span is not None and error.value.span.line == 4


def test_a_space_whose_only_open_places_are_train_settings_is_searchable():
    text = """\
data digits(test: 0.2, val: 0.1)
model m { flatten linear(16) relu linear(classes) }
train { epochs 1 optimizer adam(lr: log(1e-4..1e-2)) }
search random(trials: 2)
"""
    api.check(parse_text(text, "h.grow"))
    with pytest.raises(GrowDSLError, match="draws no hyperparameters"):
        api.check(parse_text(text.replace("random(trials: 2)", "pathlevel"), "h.grow"))


EVOLUTION = ["search.population=4", "search.cycles=3", "search.workers=1", "train.epochs=1"]


def test_evolution_removes_the_oldest_member_each_cycle_and_resumes_to_the_uninterrupted_search(tmp_path):
    spec = api.load(SPECS / "evolution_search.grow", EVOLUTION)
    whole_run = run_search(spec, tmp_path / "whole", quiet=True, in_process=True)
    whole = whole_run.dir
    log = _log(whole)
    cycles = [line for line in log if line["event"] == "evolve"]
    assert [c["cycle"] for c in cycles] == [1, 2, 3]
    assert [c["removed"] for c in cycles] == [0, 1, 2]  # the oldest, whatever its fitness
    members = {m["member"]: m for m in _members(log)}
    for c in cycles:
        assert c["parent"] in c["sample"] and len(c["sample"]) == 3
        fittest = max(c["sample"], key=lambda m: (members[m]["fitness"], -m))
        assert members[c["parent"]]["fitness"] == members[fittest]["fitness"]
        assert 1e-3 <= members[c["child"]]["hparams"]["optimizer.lr"] <= 1e-2
    assert all(m["params"] <= 12000 for m in members.values())
    winner = log[-1]["member"]
    assert members[winner]["fitness"] == max(m["fitness"] for m in members.values())
    assert whole_run.final_metrics["params"] == members[winner]["params"]

    cut = tmp_path / "cut"
    run_search(spec, cut, quiet=True, in_process=True, legs_limit=2)
    resume_search(cut, quiet=True, in_process=True)
    assert _log(cut) == log
    mine, theirs = (torch.load(d / "model.pt", weights_only=True) for d in (cut, whole))
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)


def test_asha_stops_members_below_a_rungs_top_third_and_never_trains_them_again(tmp_path):
    spec = api.load(SPECS / "asha_search.grow", ["search.trials=5", "train.epochs=2", "search.workers=1"])
    log = _log(run_search(spec, tmp_path / "run", quiet=True, in_process=True).dir)
    stops = [line for line in log if line["event"] == "stop"]
    assert stops and all(s["rule"] == "asha" and s["epoch"] == 1 for s in stops)
    assert all(s["fitness"] < s["cutoff"] for s in stops)
    stopped = {s["member"] for s in stops}
    second = {m["member"] for m in _members(log) if m["leg"] == 2}
    assert second == set(range(5)) - stopped and 0 in second  # the first at a rung is never below it
    assert all(1e-4 <= m["hparams"]["optimizer.lr"] <= 3e-2 for m in _members(log))


def test_the_median_rule_stops_a_member_whose_best_is_below_the_median_of_running_averages():
    from growdsl.search.stopping import Rule, decide, rungs

    rule = Rule("median", grace=2)
    results = {0: [0.5, 0.7], 1: [0.6, 0.8], 2: [0.4, 0.6], 3: [0.1, 0.2]}  # averages 0.6, 0.7, 0.5
    (stop,) = decide(rule, results, [3], {}, epochs=5)
    assert stop.member == 3 and stop.cutoff == pytest.approx(0.6)
    assert decide(rule, results, [0], {}, epochs=5) == []  # its best, 0.7, beats the median 0.5
    assert decide(rule, {3: [0.1, 0.2], 0: [0.5, 0.7]}, [3], {}, epochs=5) == []  # too few others
    assert rungs(Rule("asha", 1, 3), 10) == [1, 3, 9]


PBT_SPACE = """\
data spirals(n: 200, val: 0.2)
model m {{ linear(8..24) as a choice {{ tanh | relu }} linear(classes) }}
train {{ epochs 3 batch 32 optimizer sgd(lr: 0.1, momentum: 0.9) seed 2 device cpu }}
search pbt(population: 4, every: 1, replace: 0.5, workers: 1, {extra})
"""


def test_pbt_mixing_with_itself_and_the_searl_baseline_make_the_children_the_authors_make(tmp_path):
    log = _log(run_search(parse_text(PBT_SPACE.format(extra="donor: self, mix: 1"), "s.grow"),
                          tmp_path / "self", quiet=True, in_process=True).dir)  # fmt: skip
    exploits = [line for line in log if line["event"] == "exploit"]
    assert exploits and all(len(e["parents"]) == 1 and e["donor"] == "self" for e in exploits)
    assert all(e["positions"] and (e["shrink"], e["perturb"]) == (0.4, 0.1) for e in exploits)
    log = _log(run_search(parse_text(PBT_SPACE.format(extra="mode: searl"), "s.grow"),
                          tmp_path / "searl", quiet=True, in_process=True).dir)  # fmt: skip
    exploits = [line for line in log if line["event"] == "exploit"]
    assert {e["searl"] for e in exploits} <= {"copy", "weights", "gene"} and len(exploits) == 4
    for e in exploits:
        fresh = e["searl"] == "gene"
        expected = (0.0, 1.0, True) if fresh else (1.0, 0.0, False)
        assert (e["shrink"], e["perturb"], bool(e["positions"])) == expected
