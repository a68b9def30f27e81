"""`train { precision ... memory_format ... }`: autocast in training, fp16's scaler in the
checkpoint, bitwise resume, and growth statistics in fp32 whatever the training precision."""

from __future__ import annotations

import contextlib

import pytest
import torch

from growdsl.errors import RunError
from growdsl.grow import step
from growdsl.grow.guard import propose_finite
from growdsl.grow.net import Net
from growdsl.grow.policy import GrowthPolicy
from growdsl.ir import lower
from growdsl.lang import parse_text
from growdsl.run import precision as amp
from growdsl.run import resume, run
from growdsl.run.checkpoint import load_checkpoint
from growdsl.run.config import train_config
from growdsl.run.datasets import describe, load_data
from growdsl.run.loop import compute_loss, train_epoch
from growdsl.run.member import growth_hooks, initial_payload, state_from_payload
from growdsl.run.progress import TrainingProgress

TINY = """\
data spirals(n: 200, val: 0.1)
model tiny {{ linear(16) relu dropout(0.2) linear(classes) }}
train {{ epochs 3 batch 32 optimizer sgd(lr: 0.1, momentum: 0.9) schedule cosine seed 7 device cpu {extra} }}
"""

# a small CNN on digits with a cell path-level growth can change, and two layers a split can widen
CNN = """\
data digits(test: 0.75)
block cell(c) {{ conv(c) bn relu branch add {{ conv(c, k: 1) bn | identity }} }}
model m {{
    conv(4..8, k: 3) as stem bn relu cell(4) as c1 maxpool
    gap flatten linear(8..16) as fc relu linear(classes)
}}
train {{ epochs 2 batch 64 optimizer adam(lr: 3e-3) seed 3 device cpu {extra} }}
grow {{ every 1 epochs {grow} }}
"""


def spec_file(tmp_path, text: str, name: str = "s.grow"):
    path = tmp_path / name
    path.write_text(text)
    return parse_text(text, str(path))


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def training_state(text: str):
    spec = parse_text(text, "p.grow")
    info = describe(spec.data)
    config = train_config(spec.train)
    graph = lower(spec, info.input_shape, info.classes)
    payload = initial_payload(graph, config, config.seed, config.epochs)
    state = state_from_payload(payload, config, torch.device("cpu"), config.epochs)
    return spec, config, state, load_data(spec.data, config.seed)


def test_bf16_trains_on_the_cpu_with_a_bf16_forward_and_fp32_weights():
    _, config, state, data = training_state(TINY.format(extra="precision bf16"))
    seen = []
    first = next(m for m in state.model.modules() if isinstance(m, torch.nn.Linear))
    first.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    loss = train_epoch(state, data.train, config, TrainingProgress(False, 1, 1))
    assert seen and set(seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in state.model.parameters())
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in state.model.parameters())
    _, fp32, fp32_state, _ = training_state(TINY.format(extra=""))
    assert loss != train_epoch(fp32_state, data.train, fp32, TrainingProgress(False, 1, 1))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_resume_at_a_lower_precision_is_bitwise(tmp_path, precision):
    spec = spec_file(tmp_path, TINY.format(extra=f"precision {precision}"))
    whole = run(spec, tmp_path / "whole", quiet=True)
    run(spec, tmp_path / "cut", quiet=True, epochs_limit=1)
    resumed = resume(tmp_path / "cut", quiet=True)
    assert_same_weights(whole.model, resumed.model)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in whole.history]


def test_fp16s_gradient_scaler_is_checkpointed_and_restored(tmp_path):
    spec = spec_file(tmp_path, TINY.format(extra="precision fp16"))
    run(spec, tmp_path / "cut", quiet=True, epochs_limit=1)
    saved = load_checkpoint(tmp_path / "cut")["scaler"]
    assert set(saved) >= {"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"}
    assert saved["_growth_tracker"] > 0  # the scaler counted the epoch's good steps: state to carry
    config = train_config(spec.train)
    changed = {**saved, "scale": 8.0, "_growth_tracker": 5}
    state = state_from_payload(
        {**load_checkpoint(tmp_path / "cut"), "scaler": changed}, config, torch.device("cpu"), 3
    )
    assert state.scaler.get_scale() == 8.0 and state.checkpoint_payload()["scaler"] == changed


def test_fp32_and_bf16_runs_keep_no_scaler(tmp_path):
    for precision in ("fp32", "bf16"):
        spec = spec_file(tmp_path, TINY.format(extra=f"precision {precision}"), f"{precision}.grow")
        run(spec, tmp_path / precision, quiet=True, epochs_limit=1)
        assert load_checkpoint(tmp_path / precision)["scaler"] is None


def test_bf16_on_a_card_without_bfloat16_is_a_run_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla T4")
    with pytest.raises(RunError, match="Tesla T4 cannot compute in bfloat16"):
        amp.check_precision("bf16", torch.device("cuda"))
    amp.check_precision("fp16", torch.device("cuda"))
    amp.check_precision("bf16", torch.device("cpu"))


GROWTHS = {
    "split exact": "split(on: [stem, fc], frac: 0.5, method: exact, samples: 128)",
    "split fast": "split(on: [fc], frac: 0.5, method: fast, samples: 128)",
    "firefly": "firefly(on: [fc], wider: 8, candidates: 4, deeper: 0, steps: 1, samples: 128)",
    "pathlevel": "pathlevel(on: [c1], ops: [replace, split_concat], steps: 1, samples: 64)",
}


def grown(grow: str, outer: contextlib.AbstractContextManager, monkeypatch) -> tuple[list, list, object]:
    """One growth step of the CNN's untrained net, run inside `outer`: every proposed candidate's
    score, the step's grow lines and the grown net."""
    spec, config, state, data = training_state(CNN.format(extra="precision bf16", grow=grow))
    state.epoch = 1
    (hook,) = growth_hooks(spec.grow, data, config)
    scores = []

    def recording(*args, **kwargs):
        candidates, skipped = propose_finite(*args, **kwargs)
        scores.extend(c.score for cands in candidates.values() for c in cands)
        return candidates, skipped

    monkeypatch.setattr(step, "propose_finite", recording)
    with outer:
        hook(state, {})
    return scores, [r for r in state.history if r["event"] == "grow"], state.model


@pytest.mark.parametrize("name", GROWTHS)
def test_growth_statistics_are_fp32_even_inside_a_bf16_autocast_region(name, monkeypatch):
    plain_scores, plain_lines, plain_net = grown(GROWTHS[name], contextlib.nullcontext(), monkeypatch)
    bf16_scores, bf16_lines, bf16_net = grown(
        GROWTHS[name], torch.autocast("cpu", dtype=torch.bfloat16), monkeypatch
    )
    assert plain_scores, "nothing was proposed: the comparison would be empty"
    assert bf16_scores == plain_scores  # bitwise
    assert bf16_lines == plain_lines  # edits, scores and delta_out
    assert_same_weights(plain_net, bf16_net)


def test_without_the_guard_bf16_autocast_would_change_the_scores():
    """The control: the same proposal made under autocast gives other scores, so the test above
    would see a step that did not turn autocast off."""
    spec, config, state, data = training_state(CNN.format(extra="", grow=GROWTHS["split exact"]))
    (transform,) = GrowthPolicy.from_block(spec.grow).transforms
    net = Net(state.graph, state.model)

    def scores() -> list[float]:
        rng = torch.Generator().manual_seed(0)
        cands = transform.propose(net, data.train, lambda o, y: compute_loss("cross_entropy", o, y), rng)
        return [c.score for c in cands]

    plain = scores()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert scores() != plain


def test_a_function_preserving_step_under_bf16_still_preserves_the_function(tmp_path):
    grow = "pathlevel(on: [c1], ops: [insert], choose: random, steps: 1, samples: 64)"
    spec = spec_file(tmp_path, CNN.format(extra="precision bf16", grow=grow))
    lines = [r for r in run(spec, tmp_path / "out", quiet=True).history if r["event"] == "grow"]
    assert lines and all(r["delta_out"] < 1e-5 for r in lines)


def test_channels_last_trains_grows_and_resumes_bitwise(tmp_path):
    grow = "split(on: [stem, fc], frac: 0.5, method: exact, samples: 128)"
    spec = spec_file(tmp_path, CNN.format(extra="memory_format channels_last", grow=grow))
    whole = run(spec, tmp_path / "whole", quiet=True)
    assert any(r["event"] == "grow" for r in whole.history)
    conv = next(m for m in whole.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    run(spec, tmp_path / "cut", quiet=True, epochs_limit=1)
    assert_same_weights(whole.model, resume(tmp_path / "cut", quiet=True).model)
