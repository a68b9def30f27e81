"""Writers for every export format: what each run writes, and what `export [...]` adds.

Every run writes `final.grow` and `graph.json`; the `export` section (or `growdsl export`) adds
`graphml`, `dot`, `pt2`, `onnx` and `py` (a standalone PyTorch file, growdsl/export/python.py).
Files are written atomically so an interrupted export never leaves a half-written file under a
final name.

The two model formats are the ones other tools load (docs/cli.md, "Loading a trained model"):

- `pt2` (`model.pt2`): a `torch.export` program, loaded with `torch.export.load(path).module()`;
- `onnx` (`model.onnx`): through torch's `torch.export`-based exporter, for onnxruntime, Netron
  and the like; its input is named `input`, its output `logits` (`output` for a regression net).

Both take any batch size: the batch axis is exported as a dynamic dimension named `batch`.
TorchScript is retired: `torch.jit` is deprecated (it prints a FutureWarning on every use) and
`torch.export` is its successor; asking for `torchscript` is an error that says so.

This module is on the path of `growdsl check` (`check_export`), which must not import torch:
torch is imported inside the writers that need it.
"""

from __future__ import annotations

import copy
import errno
import importlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import networkx as nx

from growdsl import strict_json as json  # every JSON file growdsl writes is strict JSON
from growdsl.errors import MissingDependencyError, RunError, SpecError
from growdsl.export.python import python_source
from growdsl.export.spec import final_grow_text
from growdsl.ir import ArchGraph, to_dot, to_json
from growdsl.lang.ast import ExportDecl, Spec
from growdsl.lang.suggest import unknown_name_message

if TYPE_CHECKING:
    from torch import nn

ALWAYS = ("grow", "json")
FORMATS = ("grow", "json", "graphml", "dot", "pt2", "onnx", "py")
RETIRED = {
    "torchscript": "TorchScript export is retired: torch.jit is deprecated in PyTorch; "
    "use pt2 (torch.export), loaded with torch.export.load(path).module()",
}
FILE_NAMES = {
    "grow": "final.grow",
    "json": "graph.json",
    "graphml": "graph.graphml",
    "dot": "graph.dot",
    "pt2": "model.pt2",
    "onnx": "model.onnx",
    "py": "model.py",
}
INPUT_NAME = "input"
EXAMPLE_BATCH = 2  # torch.export specialises a dimension of size 0 or 1, so the example has 2 rows


def output_name(graph: ArchGraph) -> str:
    """The ONNX output's name: `logits` for a classifier (scores before softmax), `output` for
    a regression net (no classes)."""
    return "logits" if graph.classes else "output"


def check_export(decl: ExportDecl | None) -> None:
    """A SpecError at its place for an `export [...]` format that is unknown or retired, so
    `growdsl check` catches it before a run trains."""
    for name in decl.formats if decl else ():
        if name.id in RETIRED:
            raise SpecError(RETIRED[name.id], name.span, expected="export [pt2]")
        if name.id not in FORMATS:
            raise SpecError(unknown_name_message("export format", name.id, FORMATS), name.span)


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temp file in the same folder, fsync it, then rename over `path`."""
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(path.parent))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the mode open() would
    try:
        write(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        named = _write_error(e, path, Path(tmp))
        if named is e:
            raise
        raise named from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_error(error: Exception, path: Path, tmp: Path) -> Exception:
    """A failed write as an OSError that names `path`: a write error of Python's carries no file
    name, and torch.save reports a full disk as a RuntimeError ("unexpected pos ..."). Any other
    RuntimeError is a bug and stays what it is."""
    if isinstance(error, OSError):
        return error if error.filename else OSError(error.errno, error.strerror or str(error), str(path))
    if tmp.exists() and shutil.disk_usage(tmp.parent).free < tmp.stat().st_size + (1 << 20):
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return error


def _write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda p: p.write_text(text))


def _graphml_graph(graph: ArchGraph) -> nx.DiGraph:
    """GraphML takes only scalar attributes: structured ones are stored as JSON strings."""
    data = to_json(graph)
    g = nx.DiGraph(root=graph.root, input_shape=json.dumps(data["input_shape"]), classes=graph.classes or 0)
    for node in data["nodes"]:
        attrs = {  # an unset attribute (an unlabelled node's label: None) is left out, not "null"
            k: v if isinstance(v, (str, int, float, bool)) else json.dumps(v)
            for k, v in node.items()
            if k != "id" and v is not None
        }
        g.add_node(node["id"], **attrs)
    for edge in data["edges"]:
        g.add_edge(edge["source"], edge["target"], pos=edge["pos"])
    return g


def _cpu_eval_copy(model: nn.Module) -> nn.Module:
    """The model on the CPU in eval mode (dropout off, batch-norm running statistics), so the
    file runs anywhere and the caller's model keeps its device and mode."""
    return copy.deepcopy(model).cpu().eval()


def _exportable(graph: ArchGraph, model: nn.Module):  # noqa: ANN202 - (model, example, dynamic shapes)
    import torch

    example = torch.zeros(EXAMPLE_BATCH, *graph.input_shape)
    return _cpu_eval_copy(model), (example,), ({0: torch.export.Dim("batch")},)


def _write_pt2(path: Path, graph: ArchGraph, model: nn.Module) -> None:
    import torch

    module, args, dynamic = _exportable(graph, model)
    program = torch.export.export(module, args, dynamic_shapes=dynamic)
    archive = io.BytesIO()  # torch warns about a file name not ending in .pt2 (our temp file's)
    torch.export.save(program, archive)
    write_atomically(path, lambda p: p.write_bytes(archive.getvalue()))


def _write_onnx(path: Path, graph: ArchGraph, model: nn.Module) -> None:
    for package in ("onnx", "onnxscript"):  # torch.onnx's exporter imports both when it runs
        try:
            importlib.import_module(package)
        except ImportError as e:
            raise MissingDependencyError("ONNX export", "onnx", package) from e
    import torch

    module, args, dynamic = _exportable(graph, model)
    write_atomically(
        path,
        lambda p: torch.onnx.export(
            module,
            args,
            str(p),
            input_names=[INPUT_NAME],
            output_names=[output_name(graph)],
            dynamic_shapes=dynamic,
            dynamo=True,
            verbose=False,  # the exporter otherwise reports each of its passes on stdout
        ),
    )


def _check_formats(formats: tuple[str, ...]) -> None:
    retired = [f for f in formats if f in RETIRED]
    if retired:
        raise RunError(RETIRED[retired[0]])
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise RunError(f"unknown export format(s) {', '.join(unknown)}; known: {', '.join(FORMATS)}")


def write_exports(
    run_dir: str | Path, spec: Spec, graph: ArchGraph, model: nn.Module, formats: tuple[str, ...] = ()
) -> list[Path]:
    """Write `final.grow`, `graph.json` and each requested format into `run_dir`; return the paths."""
    run_dir = Path(run_dir)
    _check_formats(formats)
    written = []
    for fmt in dict.fromkeys(ALWAYS + tuple(formats)):
        path = run_dir / FILE_NAMES[fmt]
        if fmt == "grow":
            _write_text(path, final_grow_text(spec, graph))
        elif fmt == "json":
            _write_text(path, json.dumps(to_json(graph), indent=1) + "\n")
        elif fmt == "graphml":
            write_atomically(path, lambda p: nx.write_graphml(_graphml_graph(graph), p))
        elif fmt == "dot":
            _write_text(path, to_dot(graph))
        elif fmt == "pt2":
            _write_pt2(path, graph, model)
        elif fmt == "onnx":
            _write_onnx(path, graph, model)
        elif fmt == "py":
            _write_text(path, python_source(graph, model))
        written.append(path)
    return written
