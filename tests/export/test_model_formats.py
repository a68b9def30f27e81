"""The model formats other tools load: ONNX run by onnxruntime and a `torch.export` program loaded
back with `torch.export.load`, each compared with the torch module it came from at several batch
sizes; TorchScript is refused with a message naming its successor."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from growdsl import api
from growdsl.cli import main
from growdsl.errors import MissingDependencyError, RunError, SpecError
from growdsl.export import write_exports
from growdsl.ir.ops import OPS
from growdsl.lang import parse_text

BATCHES = (1, 7, 64)  # 1 and 7: not the example batch the exporter traced with

# every op of the op table, each merge-free container (a concat branch, a choice), batch norm and
# dropout (whose eval-mode behaviour differs from training)
CNN = """
data digits
model all {
    conv(8, k: 3) bn gelu
    sepconv(8, k: 3) silu
    branch concat { conv(6, k: 1) sigmoid | slice(2, 8) avgpool(1) identity }
    branch add { conv(12, k: 3) bn relu | identity }
    branch add { conv(16, k: 3) bn relu | pad_channels(16) }
    maxpool(2) dropout(0.3)
    choice { tanh | relu }
    gap flatten linear(16) bn rbf linear(classes)
}
"""
REGRESSION = "data wave\nmodel fit { linear(16) tanh linear(1) }\ntrain { loss mse }\n"


def _trained_looking(text: str, tmp_path: Path):
    """Spec, graph and model; the batch-norm running statistics moved off their initial values
    (as training would), so eval mode differs from train mode."""
    spec = parse_text(text, str(tmp_path / "net.grow"))
    graph = api.lower(spec)
    torch.manual_seed(0)
    model = api.build_model(graph)
    with torch.no_grad():
        model(torch.randn(32, *graph.input_shape) * 2 + 1)
    return spec, graph, model


def _reference(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        out = model(x).numpy()
    model.train()
    return out


def _export_quietly(tmp_path: Path, text: str, fmt: str, capfd: pytest.CaptureFixture[str]):
    """Export, and fail on any noise torch would print: deprecation warnings, log lines, progress."""
    spec, graph, model = _trained_looking(text, tmp_path)
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (path,) = [p for p in write_exports(tmp_path, spec, graph, model, (fmt,)) if p.suffix[1:] == fmt]
    noisy = [w for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert not noisy, [str(w.message) for w in noisy]
    printed = capfd.readouterr()
    assert printed.out == printed.err == "", printed
    assert model.training, "the caller's model keeps its mode"
    return path, graph, model


def test_the_exported_network_uses_every_op_of_the_op_table():
    graph = api.lower(parse_text(CNN, "all.grow"))
    assert {graph[n]["op"] for n in graph.walk() if graph.kind(n) == "op"} == set(OPS)


@pytest.mark.parametrize(
    ("text", "output"), [(CNN, "logits"), (REGRESSION, "output")], ids=["all_ops", "wave"]
)
def test_onnx_export_runs_in_onnxruntime_like_torch_at_any_batch_size(tmp_path, text, output, capfd):
    path, graph, model = _export_quietly(tmp_path, text, "onnx", capfd)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == [output]
    for batch in BATCHES:
        x = torch.randn(batch, *graph.input_shape)
        (got,) = session.run(None, {"input": x.numpy()})
        np.testing.assert_allclose(got, _reference(model, x), rtol=1e-4, atol=1e-5)


def test_pt2_export_loads_back_with_torch_export_and_matches_at_any_batch_size(tmp_path, capfd):
    path, graph, model = _export_quietly(tmp_path, CNN, "pt2", capfd)
    assert path.name == "model.pt2"
    loaded = torch.export.load(str(path)).module()
    for batch in BATCHES:
        x = torch.randn(batch, *graph.input_shape)
        with torch.no_grad():
            np.testing.assert_allclose(loaded(x).numpy(), _reference(model, x), rtol=1e-5, atol=1e-6)


def test_onnx_without_the_onnx_package_names_the_extra_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # what `import onnx` finds when it is not installed
    spec, graph, model = _trained_looking(REGRESSION, tmp_path)
    with pytest.raises(MissingDependencyError, match=r"pip install 'growdsl\[onnx\]'"):
        write_exports(tmp_path, spec, graph, model, ("onnx",))
    assert not (tmp_path / "model.onnx").exists()


def test_torchscript_is_refused_naming_torch_export(tmp_path):
    spec, graph, model = _trained_looking(REGRESSION, tmp_path)
    with pytest.raises(RunError, match="torch.export"):
        write_exports(tmp_path, spec, graph, model, ("torchscript",))


def test_check_points_at_a_retired_or_unknown_export_format_in_the_spec(tmp_path):
    for fmt, message in (("torchscript", "retired"), ("onxx", "did you mean 'onnx'")):
        spec = parse_text(REGRESSION + f"export [pt2, {fmt}]\n", "net.grow")
        with pytest.raises(SpecError, match=message) as err:
            api.check(spec)
        assert (err.value.span.line, err.value.span.col) == (4, 14)


def test_cli_export_of_a_missing_package_or_retired_format_exits_2(tmp_path, monkeypatch):
    from click.testing import CliRunner

    spec, graph, model = _trained_looking(REGRESSION, tmp_path)
    out = tmp_path / "run"
    api.run_spec(spec, out=out, quiet=True)
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    for fmt, message in (("onnx", "growdsl[onnx]"), ("torchscript", "pt2")):
        result = CliRunner().invoke(main, ["export", str(out), "--format", fmt])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
