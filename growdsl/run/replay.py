"""Replay: fold a run's logged growth edits over its spec's lowered graph.

Every `grow` line of `history.jsonl` holds the edit it made (`growdsl.ir.edits`, JSON form), as do
a search member's `sample` lines (the grafts that drew it from the space), `mix` lines (the
positions it took from a second parent) and `pathlevel` lines (the edits the path-level
controller made to the base net), so
the final architecture of a run is a function of its spec and its history: `replay(run_dir)`
lowers the run's `spec.grow` (the spec as run, `--set` overrides applied), applies the logged
edits in order, and returns the graph, which must equal the run's `graph.json` (a tested law;
`growdsl history DIR --replay` checks it). The same records are a population's lineage.
"""

from __future__ import annotations

from pathlib import Path

from growdsl import ir, lang
from growdsl.errors import RunError
from growdsl.export import FILE_NAMES
from growdsl.ir.edits import EditError, edit_from_json, fold
from growdsl.ir.graph import ArchGraph
from growdsl.run import datasets
from growdsl.run.records import read_graph, read_history
from growdsl.run.rundir import HISTORY, SPEC, load_run_plugins

# The history events that carry an edit (in `edit`), replayed in order: growth steps, a search
# member's draw from the space, its crossover with a second parent, the path-level controller's
# changes to the base net. The one list: `growdsl history` shows exactly these.
EDIT_EVENTS = ("grow", "sample", "mix", "pathlevel")


def replay(run_dir: str | Path) -> ArchGraph:
    """The graph of the run in `run_dir` rebuilt from its spec and the edits in its history."""
    run_dir = Path(run_dir)
    spec_path = run_dir / SPEC
    if not spec_path.is_file():
        raise RunError(f"{run_dir} is not a run folder: it has no {SPEC}")
    if not (run_dir / HISTORY).exists():
        raise RunError(f"{run_dir} is not a run folder: it has no {HISTORY}")
    load_run_plugins(run_dir)
    spec = lang.load(spec_path)
    info = datasets.describe(spec.data)
    start = ir.lower(spec, info.input_shape, info.classes)
    edits = []
    for number, line in enumerate(read_history(run_dir), 1):  # each line checked as read
        if line["event"] not in EDIT_EVENTS:
            continue
        if "edit" not in line:  # a grow line of a history written before edits were logged
            raise RunError(
                f"{run_dir / HISTORY}:{number}: a {line['event']} line without its edit "
                "(the run predates replayable histories)"
            )
        edits.append(edit_from_json(line["edit"]))
    try:
        return fold(start, edits)
    except EditError as e:
        raise RunError(f"{run_dir}: the logged edits do not apply to the spec's graph: {e}") from None


def replay_difference(run_dir: str | Path) -> str | None:
    """How the replayed graph differs from the run's `graph.json` (first difference), or None."""
    run_dir = Path(run_dir)
    replayed = replay(run_dir)
    saved = run_dir / FILE_NAMES["json"]
    if not saved.exists():
        raise RunError(f"{run_dir} has no {saved.name}: the run has not finished")
    return ir.graph_difference(read_graph(saved), replayed)
