"""`search pathlevel(...)` end to end: the run directory through the CLI, resume in the middle,
the random controller, mistakes at check. (That worker processes train the same members as this
process is the backends' law, tested in test_search_run.py.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from cell_search import cell_search
from click.testing import CliRunner

from growdsl import api
from growdsl.cli import main
from growdsl.lang import parse_text
from growdsl.run.member import initial_payload, train_member
from growdsl.run.records import read_history
from growdsl.search.driver import _setup, resume_search, run_search
from growdsl.search.pathlevel import PathLevel, _child

OPTIONS = "episodes: 2, batch: 2, epochs: 1, workers: 1"


def _write(folder: Path, options: str = OPTIONS) -> Path:
    path = folder / "cell.grow"
    path.write_text(cell_search(options))
    return path


def _log(run_dir: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run_dir / "search.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k != "time"} for line in lines]


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = (torch.load(d / "model.pt", weights_only=True) for d in (a, b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The search run through the CLI, every child trained in this process."""
    folder = tmp_path_factory.mktemp("ref")
    result = CliRunner().invoke(main, ["run", str(_write(folder)), "--out", str(folder / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    return folder / "run"


def test_a_pathlevel_search_logs_every_child_and_ends_with_the_best_one(reference):
    log = _log(reference)
    assert [line["event"] for line in log] == ["base"] + ["evaluate"] * 2 + ["episode"] + ["evaluate"] * 2 + [
        "episode",
        "best",
    ]
    children = [line for line in log if line["event"] == "evaluate"]
    assert [c["member"] for c in children] == [1, 2, 3, 4]
    for child in children:
        assert child["decisions"] and {d["actor"] for d in child["decisions"]} <= {
            "merge",
            "insert",
            "replace",
        }
        assert child["reward"] == pytest.approx(math.tan(child["fitness"] * math.pi / 2), rel=1e-3)
        assert child["params"] > 0 and child["flops"] > 0
    best = max(children, key=lambda c: (c["fitness"], -c["member"]))
    assert log[-1]["member"] == best["member"] and 0 <= log[-1]["test_acc"] <= 1
    assert json.loads((reference / "metrics.json").read_text())["params"] == best["params"]
    assert {"final.grow", "model.pt", "graph.json", "report.html"} <= {p.name for p in reference.iterdir()}
    assert (reference / "members" / "4" / "history.jsonl").is_file()
    assert api.replay_difference(reference) is None  # the best child's history replays to its net
    for folder in [reference, *(reference / "members").iterdir()]:  # `growdsl history` lists every edit
        edits = [r for r in read_history(folder) if r["event"] == "pathlevel"]
        listed = [line for line in api.growth_lines(folder) if " pathlevel " in line]
        assert len(listed) == len(edits)
    assert any(" pathlevel " in line for line in api.growth_lines(reference))
    start = math.tan(log[0]["fitness"] * math.pi / 2)  # the authors' start: the base net's reward
    mean = (children[0]["reward"] + children[1]["reward"]) / 2
    assert log[3]["baseline"] == pytest.approx(start + 0.95 * (mean - start), rel=1e-3)


def test_a_child_trains_with_a_fresh_sgd_on_a_cosine_over_its_own_epochs(tmp_path):
    spec = parse_text(cell_search("epochs: 2, child_lr: 0.02"), str(_write(tmp_path)))
    setup = _setup(spec, None)
    method = PathLevel(setup)
    base = initial_payload(setup.space, setup.config, 0, setup.config.epochs)
    base, _ = train_member(base, setup.data, setup.config, 1)
    assert base["optimizer"]["state"]  # the base net's Adam has moments: a child must not get them
    child = _child(base, [], 1, setup.data, setup.config, method.config, 0.0, 0)
    sgd = child["optimizer"]["param_groups"][0]
    assert child["optimizer"]["state"] == {} and child["epoch"] == base["epoch"]
    assert (sgd["lr"], sgd["momentum"], sgd["nesterov"], sgd["weight_decay"]) == (0.02, 0.9, True, 1e-4)
    halfway, _ = train_member(child, setup.data, method.config, 1)  # cosine over the child's 2 epochs
    assert halfway["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.01)
    assert halfway["optimizer"]["state"]  # SGD's momentum, built by the child's own steps


def test_resume_in_the_middle_samples_and_trains_the_same_children(reference, tmp_path):
    out = tmp_path / "run"
    spec = parse_text(cell_search(OPTIONS), str(_write(tmp_path)))
    stopped = run_search(spec, out, quiet=True, legs_limit=1, in_process=True)
    assert [line["event"] for line in stopped.history].count("evaluate") == 2
    resume_search(out, quiet=True, in_process=True)
    assert _log(out) == _log(reference)
    assert _same_weights(out, reference)


def test_the_random_controller_samples_through_the_same_path_and_learns_nothing(tmp_path):
    options = "controller: random, episodes: 1, batch: 2, epochs: 1, workers: 1"
    spec = parse_text(cell_search(options), str(_write(tmp_path, options)))
    run = run_search(spec, tmp_path / "run", quiet=True, in_process=True)
    log = _log(run.dir)
    assert sum(line["event"] == "evaluate" for line in log) == 2
    assert log[-2]["baseline"] == pytest.approx(math.tan(log[0]["fitness"] * math.pi / 2), rel=1e-3)
    state = torch.load(run.dir / "search_state.pt", weights_only=True)
    assert state["adam"]["state"] == {}  # no step was taken


@pytest.mark.parametrize(
    ("model", "options", "message", "where"),
    [
        ("model m { flatten linear(8) relu linear(classes) }", "episodes: 2", "uses no block", "3:8"),
        ("model m { flatten cell(8) linear(classes) }", "episodes: 0", "a whole number >= 1", "3:28"),
        ("model m { flatten cell(8) linear(classes) }", "controller: lstm", "treelstm", "3:30"),
    ],
)
def test_pathlevel_mistakes_are_reported_at_their_place(tmp_path, model, options, message, where):
    path = tmp_path / "bad.grow"  # the search line third, so its columns are the options'
    path.write_text(
        f"data digits(val: 0.1)\nblock cell(c) {{ linear(c) relu }}\nsearch pathlevel({options})\n{model}\n"
    )
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 2 and message in result.output and f"bad.grow:{where}" in result.output


def test_a_pathlevel_search_needs_a_validation_split(tmp_path):
    path = _write(tmp_path)
    path.write_text(path.read_text().replace(", val: 0.15", ""))
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 2 and "validation split" in result.output and "cell.grow:1:6" in result.output
