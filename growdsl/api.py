"""The public Python API; the CLI is a thin layer over these functions.

Each function is one stage of the pipeline (docs/architecture.md): `load` (text -> Spec), `lower`
(Spec -> ArchGraph, binding the data's shape and classes), `build_model` (ArchGraph -> nn.Module),
`check` (everything a run would validate, without training), `run_spec`, `resume_run`,
`export_run`, `replay` (a run's graph rebuilt from its spec and logged edits), `load_run`,
`report_run`, `compare_runs` and `payoff_spec`. No function shares its name with a package of growdsl
(`growdsl.run` is the package that trains, `growdsl.run_spec` the function that runs a spec).

This module is on the path of `growdsl check`, `fmt` and `show`, which should start fast
(docs/benchmarks.md): it imports at the top what `check` uses, and the functions that read or
write run directories import their modules when called.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from growdsl import ir, lang
from growdsl import run as run_stage
from growdsl.compile import check_module_names, compile_graph
from growdsl.errors import RunError
from growdsl.export import check_export, write_atomically, write_exports
from growdsl.grow import check_grow
from growdsl.ir import ArchGraph, NodeShapes
from growdsl.lang.ast import Spec
from growdsl.run import datasets
from growdsl.run.config import check_loss, check_memory_format, check_on_divergence, check_size, train_config
from growdsl.run.hparams import corners, default_train
from growdsl.search import check_search, search_config
from growdsl.search.placement import describe

if TYPE_CHECKING:
    from collections.abc import Callable

    from torch import nn

    from growdsl.payoff import Payoff
    from growdsl.run.loading import LoadedRun
    from growdsl.run.single import Run


def load(path: str | Path, overrides: list[str] | None = None) -> Spec:
    """Parse a `.grow` file, then apply `--set key=value` overrides."""
    spec = lang.load(path)
    return lang.apply_overrides(spec, overrides) if overrides else spec


def format_file(path: str | Path, *, write: bool = False, drop_comments: bool = False) -> tuple[str, bool]:
    """The canonical text of the spec at `path`, its comments kept (left out with
    `drop_comments`), and whether the file differs from it. With `write`, the file is rewritten
    in place (through a symbolic link, its target; its mode kept)."""
    from growdsl.lang.comments import weave_comments

    spec = lang.load(path)
    target = Path(path).resolve()
    original = lang.read_spec_file(target)  # as `load` read it (without a byte-order mark)
    text = lang.format_spec(spec)
    if not drop_comments:
        text = weave_comments(original, text)
    changed = original != text
    if write and changed:
        mode = stat.S_IMODE(target.stat().st_mode)
        write_atomically(target, lambda p: p.write_text(text, encoding="utf-8"))
        os.chmod(target, mode)
    return text, changed


def lower(spec: Spec) -> ArchGraph:
    """Lower the spec's model, with `classes` and the input shape bound from its data."""
    info = datasets.describe(spec.data)
    return ir.lower(spec, info.input_shape, info.classes)


def build_model(graph: ArchGraph) -> nn.Module:
    """The `nn.Module` of `graph` (a `GrowNet`: its state-dict keys are node ids), freshly
    initialised from torch's global generator."""
    return compile_graph(graph)


@dataclass(frozen=True)
class CheckResult:
    """What `growdsl check` reports: the lowered graph, its shapes and its size."""

    spec: Spec
    graph: ArchGraph
    shapes: dict[str, NodeShapes]
    params: int
    flops: int

    def summary(self) -> str:
        out = self.shapes[self.graph.root].out
        growable = sum(
            1 for n in self.graph.walk() if self.graph[n].get("width") or self.graph[n].get("depth")
        )
        choices = sum(1 for n in self.graph.walk(live_only=False) if self.graph.kind(n) == "choice")
        return (
            f"{self.spec.file}: ok: model {self.graph.root}, input {list(self.graph.input_shape)} -> "
            f"output {list(out)}, {len(self.graph.ops())} ops, {self.params:,} params, "
            f"{self.flops:,} FLOPs, {growable} growable, {choices} choices"
        )

    def placement(self) -> str | None:
        """What `check` says of a search's members: how many train at once, and where
        (docs/search.md, "Placement"); None for a spec without a search."""
        if self.spec.search is None:
            return None
        config = search_config(self.spec.search)
        where = describe(config.backend, config.options["workers"])
        return f"{self.spec.file}: search {config.method}: {where}"


def check(spec: Spec) -> CheckResult:
    """Validate everything a run would use (model, shapes, data options, training settings, growth
    and search policies, export formats) without loading data or training."""
    info = datasets.describe(spec.data)
    graph = ir.lower(spec, info.input_shape, info.classes)
    shapes = ir.infer_shapes(graph)
    check_module_names(graph)
    # every value a search may draw must be a valid setting; without a search, the values run
    blocks = corners(spec.train) if spec.search is not None else [default_train(spec.train)]
    for block in blocks:
        train_config(block, regression=info.classes is None)
    check_loss(blocks[0], info.classes, shapes[graph.root].out, spec.model.span)
    check_on_divergence(blocks[0], tasks=info.tasks is not None)
    check_memory_format(blocks[0], info.input_shape)
    check_grow(spec.grow, graph)
    check_search(spec.search, graph, spec.data, spec.train)
    check_export(spec.export)
    params = ir.param_count(graph)
    check_size(blocks[0], params, spec.model.span)
    return CheckResult(spec, graph, shapes, params, ir.flops(graph))


def check_file(path: str | Path, overrides: list[str] | None = None) -> CheckResult:
    return check(load(path, overrides))


def run_spec(
    spec: Spec,
    out: str | Path | None = None,
    *,
    device: str | None = None,
    quiet: bool = False,
    force: bool = False,
    tensorboard: str | Path | None = None,
) -> Run:
    """Check the spec, then train (and grow) it, or run its search; the run directory is `out` or
    `runs/<model>-<time>`; with `tensorboard`, TensorBoard logs of a single run are written to that
    folder as it trains."""
    from growdsl.run.memory import allocation_failures_refused

    check(spec)
    with allocation_failures_refused():
        if spec.search is not None:
            from growdsl.run.distributed import launched
            from growdsl.search.driver import run_search

            if launched():
                raise RunError("a search runs on one process (its members on its backend), not torchrun")
            return run_search(spec, out, device=device, quiet=quiet, force=force)
        return run_stage.run(spec, out, device=device, quiet=quiet, force=force, tensorboard=tensorboard)


def resume_run(run_dir: str | Path, *, device: str | None = None, quiet: bool = False) -> Run:
    """Continue an interrupted run from `run_dir/checkpoint.pt`, or a search from its saved state:
    whichever of the two `run.json` names, should a folder hold both."""
    from growdsl.run.checkpoint import is_the_folders_checkpoint
    from growdsl.run.distributed import launched
    from growdsl.run.memory import allocation_failures_refused
    from growdsl.search.driver import is_search_dir, resume_search

    with allocation_failures_refused():
        if is_search_dir(run_dir) and not is_the_folders_checkpoint(Path(run_dir)):
            if launched():
                raise RunError("a search resumes on one process (its members on its backend), not torchrun")
            return resume_search(run_dir, device=device, quiet=quiet)
        return run_stage.resume(run_dir, device=device, quiet=quiet)


def export_run(run_dir: str | Path, formats: tuple[str, ...] | list[str]) -> list[Path]:
    """Write a run's graph and weights in more formats, into `run_dir`: a run's from its
    checkpoint (so a stopped run's too), a search's from its result, the fittest member's
    `graph.json` and `model.pt` (a search has no checkpoint of its own)."""
    from growdsl.run.checkpoint import load_checkpoint
    from growdsl.run.rundir import load_run_plugins
    from growdsl.search.driver import is_search_dir

    run_dir = Path(run_dir)
    load_run_plugins(run_dir)
    if is_search_dir(run_dir):
        from growdsl.search.folder import load_result

        result = load_result(run_dir)
        spec = lang.load(run_dir / "spec.grow")
        return write_exports(run_dir, spec, result.graph, result.model, tuple(formats))
    ckpt = load_checkpoint(run_dir)
    spec = lang.parse_text(ckpt["spec"], str(run_dir / "spec.grow"))
    graph = ir.from_json(ckpt["graph"])
    model = compile_graph(graph)
    model.load_state_dict(ckpt["model"])
    return write_exports(run_dir, spec, graph, model, tuple(formats))


def load_run(run_dir: str | Path) -> LoadedRun:
    """A finished run's graph and its module with the trained weights (`graph.json` + `model.pt`):
    `growdsl.load_run("runs/mlp-...").model(x)`."""
    from growdsl.run.loading import load_run

    return load_run(run_dir)


def replay(run_dir: str | Path) -> ArchGraph:
    """The graph of a run rebuilt from its `spec.grow` and the edits its history logged; equals the
    run's `graph.json` (`replay_difference` says where it does not)."""
    from growdsl.run.replay import replay

    return replay(run_dir)


def replay_difference(run_dir: str | Path) -> str | None:
    """The first difference between a finished run's replayed graph and its `graph.json`, or None."""
    from growdsl.run.replay import replay_difference

    return replay_difference(run_dir)


def growth_lines(run_dir: str | Path) -> list[str]:
    """One line of text per edit of a run's history (every event `replay` applies): epoch, what
    made it (a transform; `sample`, `mix` and `pathlevel` for a search member's draw, crossover
    and path-level change), the edit, and for a growth step params and output change."""
    from growdsl.run.records import read_history
    from growdsl.run.replay import EDIT_EVENTS

    if not (Path(run_dir) / "history.jsonl").is_file():
        raise RunError(f"{run_dir} is not a run folder: it has no history.jsonl")
    lines = []
    for r in read_history(run_dir):
        if r.get("event") not in EDIT_EVENTS:
            continue
        edit = _edit_text(r.get("edit") or {"kind": "?"})
        if r["event"] != "grow":
            lines.append(f"epoch {r['epoch']:>4}  {r['event']:<8} {edit}")
            continue
        delta = r.get("delta_out")
        lines.append(
            f"epoch {r['epoch']:>4}  {r['transform']:<8} {edit}  "
            f"params {r['params_before']:,} -> {r['params_after']:,}"
            + (f"  max |Δout| {delta:.3g}" if delta is not None else "")
        )
    return lines or [f"{run_dir}: no edits (the spec's architecture, trained as it is)"]


def _edit_text(edit: dict[str, Any]) -> str:
    """An edit's JSON form as one short call: its kind and fields (a graft's donor subtree left
    out; the parts of a `several` edit each in turn)."""
    if "edits" in edit:
        return f"{edit['kind']}({', '.join(_edit_text(part) for part in edit['edits'])})"
    return f"{edit['kind']}({', '.join(f'{k}: {v}' for k, v in edit.items() if k not in ('kind', 'donor'))})"


def report_run(run_dir: str | Path) -> list[Path]:
    """Rebuild a run's report (report.png, architecture.png, report.html, metrics.json) from its
    history.jsonl and graph.json; return the files written."""
    from growdsl.run.report import rebuild_report  # matplotlib: not for check
    from growdsl.run.rundir import load_run_plugins

    load_run_plugins(run_dir)  # the tree picture infers the shapes of a plugin's ops
    return rebuild_report(run_dir)


def compare_runs(run_dirs: list[str | Path], plot: str | Path | None = None) -> str:
    """A table of several runs (accuracy, size, growth steps, time), from their run directories;
    with `plot`, their curves overlaid in a PNG there."""
    from growdsl.run.compare import compare  # matplotlib: not for check

    return compare([Path(d) for d in run_dirs], Path(plot) if plot is not None else None)


def payoff_spec(
    spec: Spec,
    *,
    seeds: int = 5,
    widths: int = 4,
    workers: int = 2,
    progress: Callable[[str], None] | None = None,
) -> Payoff:
    """Train the spec's grown net beside its alternatives (its final net from scratch, uniform
    widths at its size, the start net, a width sweep), paired by seed (growdsl/payoff/)."""
    from growdsl.payoff import payoff as measure  # torch and the worker pool: not for check

    return measure(spec, seeds=seeds, widths=widths, workers=workers, progress=progress)
