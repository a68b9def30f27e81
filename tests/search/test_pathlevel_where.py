"""`where:` bounds in path-level search: an upper bound masks the choices that would break it (no
redraw), a child that still breaks a bound is not trained and scores 0 in REINFORCE, a base net
that breaks an upper bound is refused at `check` (docs/search.md, "Constraints")."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from cell_search import cell_search
from click.testing import CliRunner

from growdsl import ir
from growdsl.cli import main
from growdsl.ir.edits import apply_in_place, fold
from growdsl.lang import parse_text
from growdsl.run.datasets import describe
from growdsl.search.constraints import Constraint, satisfied
from growdsl.search.controller import RandomPolicy
from growdsl.search.decisions import sample_edits
from growdsl.search.driver import run_search

BASE_PARAMS = 1582  # the spec's model, as `growdsl check` counts it


def _graph() -> ir.ArchGraph:
    spec = parse_text(cell_search("episodes: 1"), "cell.grow")
    info = describe(spec.data)
    return ir.lower(spec, info.input_shape, info.classes)


def _costs(graph: ir.ArchGraph) -> tuple[int, int]:
    return ir.param_count(graph), ir.flops(graph)


def test_no_path_level_edit_makes_a_net_smaller():
    """What masking an upper bound rests on: along every sampled child, params and FLOPs never fall."""
    generator = torch.Generator().manual_seed(0)
    grew = 0
    for _ in range(15):
        graph = _graph()
        edits, _ = sample_edits(graph, RandomPolicy(), generator)
        before = _costs(graph)
        for edit in edits:
            apply_in_place(graph, edit)
            after = _costs(graph)
            assert after[0] >= before[0] and after[1] >= before[1]
            grew += after > before
            before = after
    assert grew > 0


def test_an_upper_bound_masks_the_choices_that_would_break_it():
    base = _graph()
    bound = Constraint("params", "<=", BASE_PARAMS + 400, f"params <= {BASE_PARAMS + 400}")
    fits = lambda graph: satisfied(graph, (bound,))  # noqa: E731
    free, bounded = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    masked = broke = 0
    for _ in range(12):
        edits, decisions = sample_edits(base, RandomPolicy(), bounded, fits)
        assert bound.holds(ir.param_count(fold(base, edits)))  # every child within the bound, none redrawn
        masked += any(not all(d.allowed) for d in decisions)
        unbounded, _ = sample_edits(base, RandomPolicy(), free)
        broke += not bound.holds(ir.param_count(fold(base, unbounded)))
    assert broke > 0 and masked > 0  # without the mask some children would break it


def _run(tmp_path: Path, options: str) -> list[dict]:
    path = tmp_path / "cell.grow"
    path.write_text(cell_search(options))
    run = run_search(parse_text(path.read_text(), str(path)), tmp_path / "run", quiet=True, in_process=True)
    return [json.loads(x) for x in (run.dir / "search.jsonl").read_text().splitlines()]


def test_a_child_below_a_lower_bound_is_not_trained_and_scores_0(tmp_path):
    options = f"episodes: 1, batch: 4, epochs: 1, workers: 1, where: params > {BASE_PARAMS}"
    log = _run(tmp_path, options)
    children = [line for line in log if line["event"] in ("evaluate", "skip")]
    assert [c["member"] for c in children] == [1, 2, 3, 4]  # the episode's lines in member order
    skipped = [c for c in children if c["event"] == "skip"]
    trained = [c for c in children if c["event"] == "evaluate"]
    assert skipped and trained  # this seed draws both
    for child in skipped:
        assert child["params"] <= BASE_PARAMS and child["bound"] == f"params > {BASE_PARAMS}"
        assert child["reward"] == 0.0 and child["decisions"]
        assert not (tmp_path / "run" / "members" / str(child["member"])).exists()
    assert all(c["params"] > BASE_PARAMS for c in trained)
    start = math.tan(log[0]["fitness"] * math.pi / 2)  # the base net's reward
    rewards = [c["reward"] for c in children]  # the skipped children's 0 counts in the batch's mean
    episode = next(line for line in log if line["event"] == "episode")
    assert episode["mean_reward"] == pytest.approx(sum(rewards) / 4)
    assert episode["baseline"] == pytest.approx(start + 0.95 * (sum(rewards) / 4 - start), rel=1e-6)


def test_a_base_net_above_an_upper_bound_is_refused_at_check(tmp_path):
    path = tmp_path / "cell.grow"
    path.write_text(cell_search("episodes: 1, where: params < 1k"))
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 2, result.output
    assert "the base net breaks the bound `where: params < 1k`" in result.output
    assert "cell.grow:8:38" in result.output


def test_a_search_whose_every_child_breaks_a_lower_bound_says_so(tmp_path):
    from growdsl.errors import RunError

    with pytest.raises(
        RunError, match=r"no member of the search was trained: all 2 broke the bound `params > 100k`"
    ):
        _run(tmp_path, "episodes: 1, batch: 2, epochs: 1, workers: 1, where: params > 100k")
