"""`export py`: the run's final architecture as one standalone Python file, loaded where growdsl
cannot be imported, computing bit for bit what `growdsl.load_run` computes (eval mode)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from growdsl import api, plugins
from growdsl.errors import RunError
from growdsl.export import write_exports
from growdsl.ir import to_json
from growdsl.lang import parse_text

ROOT = Path(__file__).parents[2]
# every op, every merge, a chosen choice, nested branches, a path that is the identity
EVERY_OP = """
data digits
model all_ops {
    conv(8, k: 3) bn gelu as stem
    sepconv(8, k: 3) silu
    branch concat { conv(6, k: 1) sigmoid | slice(2, 8) avgpool(1) identity }
    branch add {
        conv(12, k: 3) bn relu
      | branch mean { conv(12, k: 1, bias: false) | maxpool(3, stride: 1, padding: 1) }
      | { }
    }
    maxpool(2) dropout(0.3)
    choice { tanh | relu }
    gap flatten linear(16) bn rbf linear(classes)
}
"""
SPECS = {
    "every_op": EVERY_OP,
    **{
        p.stem: p.read_text()
        for p in sorted((ROOT / "specs").glob("*.grow"))
        if p.stem in ("quickstart", "cnn_residual", "branchy_cell", "pathlevel_cell")
    },
}
# runs in a fresh interpreter where `import growdsl` fails: loads each folder's model.py with its
# model.pt and saves the outputs on the folder's input.pt
RUN_EXPORTED = """
import importlib.util, sys, torch
sys.modules["growdsl"] = None  # no growdsl here: an import of it raises ImportError
try:
    import growdsl
except ImportError:
    pass
else:
    raise SystemExit("growdsl is importable")
for folder in sys.argv[1:]:
    spec = importlib.util.spec_from_file_location("exported", folder + "/model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.load(folder)
    with torch.no_grad():
        torch.save(model(torch.load(folder + "/input.pt")), folder + "/output.pt")
"""


def _finished_run(text: str, folder: Path) -> None:
    """A run folder as a finished run leaves it (graph.json, model.pt), with weights and batch-norm
    statistics moved off their initial values as training moves them."""
    folder.mkdir()
    spec = parse_text(text, str(folder / "spec.grow"))
    graph = api.lower(spec)
    torch.manual_seed(0)
    model = api.build_model(graph)
    with torch.no_grad():
        model.train()
        model(torch.randn(32, *graph.input_shape) * 2 + 1)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model.eval()
    torch.save(model.state_dict(), folder / "model.pt")
    (folder / "graph.json").write_text(json.dumps(to_json(graph)))
    write_exports(folder, spec, graph, model, ("py",))
    torch.save(torch.randn(7, *graph.input_shape), folder / "input.pt")


def _matches_load_run(folders: list[Path], cwd: Path) -> None:
    """Each folder's model.py, run where growdsl cannot be imported, gives exactly the outputs of
    `growdsl.load_run(folder).model` on the folder's input.pt."""
    done = subprocess.run(
        [sys.executable, "-I", "-c", RUN_EXPORTED, *map(str, folders)],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for folder in folders:
        loaded = api.load_run(folder).model
        with torch.no_grad():
            expected = loaded(torch.load(folder / "input.pt"))
        assert torch.equal(torch.load(folder / "output.pt"), expected), folder.name


def test_exported_files_load_without_growdsl_and_match_load_run_exactly(tmp_path):
    for name, text in SPECS.items():
        _finished_run(text, tmp_path / name)
    _matches_load_run([tmp_path / name for name in SPECS], tmp_path)


def test_the_file_imports_torch_only_and_names_its_layers_readably(tmp_path):
    _finished_run(EVERY_OP, tmp_path / "run")
    source = (tmp_path / "run" / "model.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported == {"torch", "pathlib"}
    assert "class AllOps(nn.Module):" in source
    assert "self.conv_0 = nn.Conv2d(1, 8, 3, stride=1, padding=1, groups=1)" in source
    assert "self.stem = nn.GELU()" in source  # a label names its layer
    assert "self.conv_6_1_0 = nn.Conv2d(12, 12, 1, stride=1, padding=0, groups=1, bias=False)" in source
    assert "class SepConv(nn.Sequential):" in source and "class ChannelSlice(nn.Module):" in source
    assert "# branch mean at all_ops.6.1: 2 paths" in source and "x_1 = (x_1_0 + x_1_1) / 2" in source
    assert "weights_only=True" in source


def test_a_grown_run_exports_py_from_its_spec_and_from_the_cli(tmp_path):
    spec = tmp_path / "tiny.grow"
    spec.write_text(
        "data spirals(n: 200)\nmodel tiny { linear(4..16) as hidden tanh linear(classes) }\n"
        "train { epochs 2 }\ngrow { every 1 epochs split(frac: 0.5) }\nexport [py]\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "growdsl", "run", str(spec), "--out", str(tmp_path / "run"), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "model.py").is_file()
    (tmp_path / "run" / "model.py").unlink()
    again = subprocess.run(
        [sys.executable, "-m", "growdsl", "export", str(tmp_path / "run"), "--format", "py"],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr
    assert f"wrote {tmp_path / 'run' / 'model.py'}" in again.stdout
    assert api.load_run(tmp_path / "run").graph["tiny.hidden"]["args"]["out"] > 4  # it grew
    torch.save(torch.randn(9, 2), tmp_path / "run" / "input.pt")
    _matches_load_run([tmp_path / "run"], tmp_path)


def test_a_plugin_op_cannot_be_written_as_standalone_code(tmp_path):
    (tmp_path / "scale.py").write_text(
        "from torch import nn\nfrom growdsl.plugins import register_op\n"
        "register_op('mish2', lambda a, i: nn.Mish(), transparent=True)\n"
    )
    plugins.load_plugins([str(tmp_path / "scale.py")])
    try:
        spec = parse_text("data spirals\nmodel m { linear(4) mish2 linear(classes) }\n", "t.grow")
        graph = api.lower(spec)
        with pytest.raises(RunError, match="op 'mish2' of plugin .*scale.py.*export pt2 or onnx instead"):
            write_exports(tmp_path, spec, graph, api.build_model(graph), ("py",))
    finally:
        from growdsl.ir import ops

        del ops.OPS["mish2"]
        plugins._loaded.clear()
        plugins._enabled.clear()
