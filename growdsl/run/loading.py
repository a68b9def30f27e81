"""Loading a finished run back: its graph and its module with the trained weights.

The one right route is `graph.json` + `model.pt`: the state dict's keys are the graph's node ids,
so the module built from `graph.json` takes the weights exactly. `final.grow` is the architecture
to train again from scratch: it writes choices as their chosen path and repeats and blocks
expanded, so its lowered node ids can differ from the run's (`m.2.1.0` for a chosen path may come
back as `m.2.0`); its parameters are the same tensors in the same order, which `weights_by_order`
relies on to load `model.pt` into a module built from it (tested on every shipped spec).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from growdsl.compile import compile_graph
from growdsl.errors import CheckpointError, GrowDSLError, RunError
from growdsl.export import FILE_NAMES
from growdsl.ir.graph import ArchGraph
from growdsl.lazy import nn, torch
from growdsl.run.checkpoint import load_tensors
from growdsl.run.records import read_graph
from growdsl.run.rundir import MODEL, load_run_plugins


@dataclass
class LoadedRun:
    """A finished run's architecture and its trained module (eval mode, on the CPU)."""

    dir: Path
    graph: ArchGraph
    model: nn.Module


def load_run(run_dir: str | Path) -> LoadedRun:
    """The graph of `run_dir/graph.json` and its module with the weights of `run_dir/model.pt`."""
    run_dir = Path(run_dir)
    graph_file, weights_file = run_dir / FILE_NAMES["json"], run_dir / MODEL
    for path in (graph_file, weights_file):
        if not path.is_file():
            raise RunError(f"{run_dir} is not a finished run: it has no {path.name}")
    load_run_plugins(run_dir)
    graph = read_graph(graph_file)
    try:
        weights = load_tensors(weights_file)
    except Exception as e:  # a damaged file fails anywhere in unzipping or unpickling, any type
        raise CheckpointError(f"{weights_file} is corrupt or unreadable ({type(e).__name__})") from None
    if not isinstance(weights, dict):
        raise CheckpointError(f"{weights_file} is not a state dict (node id -> tensor)")
    try:
        model = compile_graph(graph)
    except (GrowDSLError, KeyError, TypeError, ValueError) as e:  # an op's attributes hand-edited
        raise RunError(f"{graph_file}: not an architecture growdsl can build: {e}") from None
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"{weights_file} does not fit {graph_file.name}: {e}") from None
    model.eval()
    return LoadedRun(run_dir, graph, model)


def weights_by_order(model: nn.Module, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`weights` (a run's `model.pt`) keyed by `model`'s own state-dict keys, matched in order and
    checked shape by shape: for a module built from the run's `final.grow`."""
    keys = list(model.state_dict())
    shapes = [tuple(v.shape) for v in model.state_dict().values()]
    values = list(weights.values())
    if len(keys) != len(values) or any(tuple(v.shape) != s for v, s in zip(values, shapes, strict=True)):
        raise CheckpointError("the weights do not fit this module: another architecture")
    return dict(zip(keys, values, strict=True))
