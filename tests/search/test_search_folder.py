"""A search's run folder read back by `export`, `report` and `compare`: a finished search is its
fittest member (exported from the `graph.json` and `model.pt` it leaves at its top), with the
search's own time; a search without a result is said to be one, not taken for a stray folder."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from click.testing import CliRunner

from growdsl import api
from growdsl.cli import main
from growdsl.errors import GrowDSLError
from growdsl.lang import parse_text
from growdsl.run import run
from growdsl.search.driver import run_search

SPEC = """
data spirals(n: 200, val: 0.2)
model m {{ linear({{8, 16}}) relu linear(classes) }}
train {{ epochs 1 batch 32 optimizer sgd(lr: {lr}) seed 1 device cpu }}
search random(trials: 2, workers: 1)
"""


@pytest.fixture(scope="module")
def searches(tmp_path_factory) -> dict[str, Path]:
    """A finished search, and one whose every member diverged (its folder as the search leaves it)."""
    root = tmp_path_factory.mktemp("searches")
    run_search(parse_text(SPEC.format(lr=0.1), "s.grow"), root / "finished", quiet=True, in_process=True)
    with pytest.raises(GrowDSLError):
        run_search(parse_text(SPEC.format(lr=1e30), "d.grow"), root / "diverged", quiet=True, in_process=True)
    return {"finished": root / "finished", "diverged": root / "diverged"}


def _log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "search.jsonl").read_text().splitlines()]


def test_export_of_a_search_writes_its_best_member_in_the_format_asked(searches):
    folder = searches["finished"]
    result = CliRunner().invoke(main, ["export", str(folder), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    best = api.load_run(folder)  # the fittest member: graph.json + model.pt
    x = torch.randn(5, 2)
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"))
    (logits,) = session.run(None, {"input": x.numpy().astype(np.float32)})
    assert np.allclose(logits, best.model(x).detach().numpy(), atol=1e-5)


def test_compare_shows_a_search_as_its_best_member_with_the_searchs_own_time(searches):
    folder = searches["finished"]
    result = CliRunner().invoke(main, ["compare", str(folder)])
    assert result.exit_code == 0, result.output
    log = _log(folder)
    best = next(r for r in log if r["event"] == "best")
    wall = sum(r["time"]["train"] + r["time"]["after"] for r in log if r["event"] == "leg")
    row = result.output.splitlines()[1]
    assert f"{wall:.1f}" in row.split() and f"search: member {best['member']} best of 2" in row


def test_report_compare_and_export_of_a_search_whose_every_member_diverged_say_so(searches):
    folder = searches["diverged"]
    compared = CliRunner().invoke(main, ["compare", str(folder), str(searches["finished"])])
    assert compared.exit_code == 0, compared.output
    assert "every one of its 2 members crashed or diverged" in compared.output.splitlines()[1]
    for command in (["report", str(folder)], ["export", str(folder), "--format", "graphml"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2, result.output
        assert "crashed or diverged" in result.output and "is it a run directory" not in result.output


def test_compare_counts_the_path_level_controllers_edits_as_growth_steps(tmp_path):
    """A path-level child grows by the controller's edits (`pathlevel` lines), not by `grow` ones."""
    edit = {"kind": "widen", "node": "m.0", "added": [0]}
    lines = [
        {"event": "pathlevel", "epoch": 2, "member": 3, "edit": edit},
        {"event": "pathlevel", "epoch": 2, "member": 3, "edit": edit},
        {"event": "epoch", "epoch": 3, "loss": 0.5, "acc": 0.8, "params": 50, "time": 0.1},
    ]
    (tmp_path / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    result = CliRunner().invoke(main, ["compare", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].split()[6] == "1"  # growth steps: one epoch with edits


RUN = """
data spirals(n: 200)
model m { linear(8) relu linear(classes) }
train { epochs 3 batch 32 device cpu }
"""
SEARCH_FILES = ("search_state.pt", "search.jsonl", "members", "lineage.graphml", "population.png")


def test_a_run_forced_into_a_search_folder_leaves_one_run_that_resumes(searches, tmp_path):
    out = tmp_path / "reused"
    shutil.copytree(searches["finished"], out, ignore=shutil.ignore_patterns("run.lock"))
    run(parse_text(RUN, "r.grow"), out, quiet=True, force=True, epochs_limit=1)  # then interrupted
    assert [name for name in SEARCH_FILES if (out / name).exists()] == []
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1  # the run's, not the search's
    resumed = api.resume_run(out, quiet=True)
    assert resumed.final_metrics["epochs"] == 3 and [r["epoch"] for r in resumed.history] == [1, 2, 3]


def test_resume_follows_run_json_in_a_folder_holding_a_checkpoint_and_a_search_state(searches, tmp_path):
    out = tmp_path / "mixed"  # as a --force of an older growdsl left it: the search's state stayed
    run(parse_text(RUN, "r.grow"), out, quiet=True, epochs_limit=1)
    shutil.copy(searches["finished"] / "search_state.pt", out)
    resumed = api.resume_run(out, quiet=True)
    assert resumed.final_metrics["epochs"] == 3


@pytest.mark.parametrize(
    "file, damage, message",
    [
        ("search.jsonl", b"{not json\n", "search.jsonl:"),
        ("search.jsonl", b'{"event": "best", "member": 0, "fitness": "high"}\n', "search.jsonl:"),
        ("model.pt", None, "model.pt"),
    ],
    ids=["log_line_not_json", "best_fitness_a_string", "model_a_plain_pickle"],
)
def test_a_tampered_search_folder_is_named_by_every_reader(searches, tmp_path, file, damage, message):
    folder = tmp_path / "search"
    shutil.copytree(searches["finished"], folder, ignore=shutil.ignore_patterns("run.lock"))
    if damage is None:
        (folder / file).write_bytes(pickle.dumps({"m.0.weight": [1.0]}))
    else:
        with open(folder / file, "ab") as f:
            f.write(damage)
    readers = [["export", "--format", "graphml"]] + (
        [["compare"], ["report"]] if file == "search.jsonl" else []
    )
    for command in readers:
        result = CliRunner().invoke(main, [command[0], str(folder), *command[1:]])
        assert isinstance(result.exception, SystemExit), f"{command}: {result.exception!r}"
        assert result.exit_code == 2 and message in result.output, f"{command}: {result.output}"
