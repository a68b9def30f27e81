"""Writers for every export format: what each run writes, and what `export [...]` adds.

Every run writes `final.grow` and `graph.json`; the `export` section (or `growdsl export`) adds
`graphml`, `dot`, `torchscript` and `onnx`. Files are written atomically so an interrupted export
never leaves a half-written file under a final name.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import torch
from torch import nn

from growdsl import strict_json as json  # every JSON file growdsl writes is strict JSON
from growdsl.errors import RunError
from growdsl.export.spec import final_grow_text
from growdsl.ir import ArchGraph, to_dot, to_json
from growdsl.lang.ast import Spec

ALWAYS = ("grow", "json")
FORMATS = ("grow", "json", "graphml", "dot", "torchscript", "onnx")
FILE_NAMES = {
    "grow": "final.grow",
    "json": "graph.json",
    "graphml": "graph.graphml",
    "dot": "graph.dot",
    "torchscript": "model.torchscript.pt",
    "onnx": "model.onnx",
}


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
        attrs = {k: v if isinstance(v, (str, int, float, bool)) else json.dumps(v) for k, v in node.items()}
        attrs = {k: v for k, v in attrs.items() if k != "id" and v is not None}
        g.add_node(node["id"], **attrs)
    for edge in data["edges"]:
        g.add_edge(edge["source"], edge["target"], pos=edge["pos"])
    return g


def _example_input(graph: ArchGraph, model: nn.Module) -> torch.Tensor:
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return torch.zeros(1, *graph.input_shape, device=device)


def _write_torchscript(path: Path, graph: ArchGraph, model: nn.Module) -> None:
    was_training = model.training
    model.eval()
    try:
        traced = torch.jit.trace(model, _example_input(graph, model))
        write_atomically(path, lambda p: traced.save(str(p)))
    finally:
        model.train(was_training)


def _write_onnx(path: Path, graph: ArchGraph, model: nn.Module) -> None:
    try:
        import onnx  # noqa: F401 - torch.onnx needs it at export time
    except ImportError as e:
        raise RunError("ONNX export needs the 'onnx' package: pip install onnx onnxscript") from e
    was_training = model.training
    model.eval()
    try:
        example = _example_input(graph, model)
        write_atomically(path, lambda p: torch.onnx.export(model, (example,), str(p), dynamo=False))
    finally:
        model.train(was_training)


def write_exports(
    run_dir: str | Path, spec: Spec, graph: ArchGraph, model: nn.Module, formats: tuple[str, ...] = ()
) -> list[Path]:
    """Write `final.grow`, `graph.json` and each requested format into `run_dir`; return the paths."""
    run_dir = Path(run_dir)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise RunError(f"unknown export format(s) {', '.join(unknown)}; known: {', '.join(FORMATS)}")
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
        elif fmt == "torchscript":
            _write_torchscript(path, graph, model)
        elif fmt == "onnx":
            _write_onnx(path, graph, model)
        written.append(path)
    return written
