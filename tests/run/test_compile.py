"""`train { compile ... }`: the net trains through torch.compile, is compiled again after each
growth step, resumes bitwise, and a compile that cannot work is a RunError before training.

The tests use the `aot_eager` backend: it traces the net (dynamo) and its backward (AOT autograd)
as inductor does, but generates no code, so a compile takes a second instead of tens of seconds.
One benchmark-marked test runs inductor itself."""

from __future__ import annotations

import pytest
import torch

from growdsl.errors import RunError
from growdsl.lang import parse_text
from growdsl.run import execution, resume, run
from growdsl.run.config import train_config
from growdsl.run.execution import Execution

SPEC = """\
data digits(test: 0.75)
model m {{ conv(4..8, k: 3) as stem bn relu maxpool flatten linear(8..16) as fc relu linear(classes) }}
train {{ epochs 2 batch 64 optimizer adam(lr: 3e-3) seed 5 device cpu compile {backend} }}
grow {{ every 1 epochs split(on: [stem, fc], frac: 0.5, method: exact, samples: 64) }}
"""


def spec_file(tmp_path, text: str, name: str = "s.grow"):
    path = tmp_path / name
    path.write_text(text)
    return parse_text(text, str(path))


@pytest.fixture
def compiled_nets(monkeypatch) -> list[torch.nn.Module]:
    """Every module torch.compile is asked to compile (the real compile still runs)."""
    seen = []
    real = torch.compile

    def spy(model, **kwargs):
        seen.append(model)
        return real(model, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    return seen


def test_a_compiled_run_trains_and_compiles_again_after_each_growth_step(tmp_path, compiled_nets):
    result = run(spec_file(tmp_path, SPEC.format(backend="aot_eager")), tmp_path / "c", quiet=True)
    steps = sorted({r["epoch"] for r in result.history if r["event"] == "grow"})
    assert steps == [1]
    assert len(compiled_nets) == 1 + len(steps)  # the first net, then each grown one
    assert len({id(m) for m in compiled_nets}) == len(compiled_nets)
    assert not any(k.startswith("_orig_mod") for k in result.model.state_dict())
    plain = run(spec_file(tmp_path, SPEC.format(backend="false"), "p.grow"), tmp_path / "p", quiet=True)
    losses = [[r["loss"] for r in h if r["event"] == "epoch"] for h in (result.history, plain.history)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)  # the same training, traced


def test_resume_of_a_compiled_run_is_bitwise(tmp_path):
    spec = spec_file(tmp_path, SPEC.format(backend="aot_eager"))
    whole = run(spec, tmp_path / "whole", quiet=True)
    run(spec, tmp_path / "cut", quiet=True, epochs_limit=1)
    resumed = resume(tmp_path / "cut", quiet=True)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_compile_true_without_a_cpp_compiler_is_a_run_error(monkeypatch):
    monkeypatch.setattr(execution.shutil, "which", lambda _name: None)
    config = train_config(parse_text("model m { linear(2) }\ntrain { compile true }\n", "c.grow").train)
    with pytest.raises(RunError, match="needs a C.. compiler.*compile aot_eager"):
        Execution(config, torch.device("cpu")).check()


def test_a_backend_that_fails_is_a_run_error_not_a_traceback():
    config = train_config(parse_text("model m { linear(2) }\ntrain { compile aot_eager }\n", "c.grow").train)
    runner = Execution(config, torch.device("cpu"))

    def broken(_graph, _inputs):
        raise RuntimeError("no code generator here")

    runner.backend = broken
    with pytest.raises(RunError, match="could not compile the net"):
        runner.forward(torch.nn.Linear(3, 2), torch.randn(64, 3))


@pytest.mark.benchmark
def test_inductor_compiles_trains_and_regrows_on_the_cpu(tmp_path, compiled_nets):
    result = run(spec_file(tmp_path, SPEC.format(backend="true")), tmp_path / "i", quiet=True)
    assert len(compiled_nets) == 2 and result.final_metrics["epochs"] == 2


def test_a_run_its_device_cannot_compile_stops_before_its_folder_exists(tmp_path, monkeypatch):
    monkeypatch.setattr(execution.shutil, "which", lambda _name: None)
    with pytest.raises(RunError, match="needs a C.. compiler"):
        run(spec_file(tmp_path, SPEC.format(backend="true")), tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()
