"""The public Python API; the CLI is a thin layer over these functions.

Each function is one stage of the pipeline (docs/architecture.md): `load` (text -> Spec), `lower`
(Spec -> ArchGraph, binding the data's shape and classes), `build_model` (ArchGraph -> nn.Module),
`check` (everything a run would validate, without training), `run_spec`, `resume_run` and
`export_run`. No function shares its name with a package of growdsl (`growdsl.run` is the
package that trains; `growdsl.run_spec` the function that runs a spec).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from growdsl import ir, lang
from growdsl import run as run_stage
from growdsl.compile import check_module_names, compile_graph
from growdsl.export import write_atomically, write_exports
from growdsl.export.check import check_export
from growdsl.grow import check_grow
from growdsl.ir import ArchGraph, NodeShapes
from growdsl.lang.ast import Spec
from growdsl.lang.comments import weave_comments
from growdsl.run import Run, datasets
from growdsl.run.checkpoint import load_checkpoint
from growdsl.run.config import check_loss, train_config
from growdsl.search import check_search


def load(path: str | Path, overrides: list[str] | None = None) -> Spec:
    """Parse a `.grow` file, then apply `--set key=value` overrides."""
    spec = lang.load(path)
    return lang.apply_overrides(spec, overrides) if overrides else spec


def format_file(path: str | Path, *, write: bool = False, drop_comments: bool = False) -> tuple[str, bool]:
    """The canonical text of the spec at `path`, its comments kept (left out with
    `drop_comments`), and whether the file differs from it. With `write`, the file is rewritten
    in place (through a symbolic link, its target; its mode kept)."""
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


def check(spec: Spec) -> CheckResult:
    """Validate everything a run would use (model, shapes, data options, training settings, growth
    and search policies) without loading data or training."""
    info = datasets.describe(spec.data)
    graph = ir.lower(spec, info.input_shape, info.classes)
    shapes = ir.infer_shapes(graph)
    check_module_names(graph)
    train_config(spec.train, regression=info.classes is None)
    check_loss(spec.train, info.classes, shapes[graph.root].out, spec.model.span)
    check_grow(spec.grow, graph)
    check_search(spec.search)
    check_export(spec.export)
    return CheckResult(spec, graph, shapes, ir.param_count(graph), ir.flops(graph))


def check_file(path: str | Path, overrides: list[str] | None = None) -> CheckResult:
    return check(load(path, overrides))


def run_spec(
    spec: Spec,
    out: str | Path | None = None,
    *,
    device: str | None = None,
    quiet: bool = False,
    force: bool = False,
) -> Run:
    """Check the spec, then train (and grow) it; the run directory is `out` or `runs/<model>-<time>`."""
    check(spec)
    return run_stage.run(spec, out, device=device, quiet=quiet, force=force)


def resume_run(run_dir: str | Path, *, device: str | None = None, quiet: bool = False) -> Run:
    """Continue an interrupted run from `run_dir/checkpoint.pt`."""
    return run_stage.resume(run_dir, device=device, quiet=quiet)


def export_run(run_dir: str | Path, formats: tuple[str, ...] | list[str]) -> list[Path]:
    """Write a run's graph and weights (from its checkpoint) in more formats, into `run_dir`."""
    run_dir = Path(run_dir)
    ckpt = load_checkpoint(run_dir)
    spec = lang.parse_text(ckpt["spec"], str(run_dir / "spec.grow"))
    graph = ir.from_json(ckpt["graph"])
    model = compile_graph(graph)
    model.load_state_dict(ckpt["model"])
    return write_exports(run_dir, spec, graph, model, tuple(formats))
