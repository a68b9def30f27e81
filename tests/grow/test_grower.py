"""`growdsl.Grower` and the Lightning callback: growth inside a training loop of the user's own,
the docs' two examples run as written (docs/grower.md)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import growdsl
from growdsl.errors import SpecError

DOC = Path(__file__).parents[2] / "docs" / "grower.md"
SPEC = """
data spirals(n: 200)
model m { linear(4..16) as hidden tanh linear(classes) }
train { epochs 4 seed 0 }
grow { every 1 epochs after_growth(optimizer: carry) split(frac: 0.5, eps: 0.01) }
"""


def _doc_script(name: str, folder: Path) -> Path:
    for body in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S):
        if body.startswith(f"# {name}\n"):
            (folder / name).write_text(body)
            return folder / name
    raise AssertionError(f"docs/grower.md shows no {name}")


def _train_epoch(model, optimizer, x, y) -> float:
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _spirals():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(200, 2, generator=gen), torch.randint(0, 2, (200,), generator=gen)


def _optimizer_covers(optimizer, model) -> bool:
    return {id(p) for g in optimizer.param_groups for p in g["params"]} == {id(p) for p in model.parameters()}


def test_a_growth_step_hands_back_the_grown_net_and_an_optimizer_of_its_class_with_state_carried():
    grower = growdsl.Grower(SPEC)
    model = grower.model
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02, betas=(0.8, 0.9))
    x, y = _spirals()
    loss = _train_epoch(model, optimizer, x, y)
    old_state = {name: optimizer.state[p]["exp_avg"].clone() for name, p in model.named_parameters()}
    model.eval()
    before = model(x)
    new_model, new_optimizer = grower.step(optimizer, (x, y), loss=loss)
    assert grower.grew and new_model is grower.model and new_model is not model
    assert type(new_optimizer) is torch.optim.Adam and _optimizer_covers(new_optimizer, new_model)
    assert new_optimizer.param_groups[0]["lr"] == 0.02 and new_optimizer.param_groups[0]["betas"] == (
        0.8,
        0.9,
    )
    width = grower.graph["m.hidden"]["args"]["out"]
    assert width > 4
    params = dict(new_model.named_parameters())
    carried = new_optimizer.state[params["m.hidden.weight"]]["exp_avg"]
    assert carried.shape[0] == width
    torch.testing.assert_close(carried[:4], old_state["m.hidden.weight"])  # old neurons keep theirs
    torch.testing.assert_close(new_optimizer.state[params["m.2.bias"]]["exp_avg"], old_state["m.2.bias"])
    grow = [r for r in grower.history if r["event"] == "grow"]
    assert grow and grow[0]["epoch"] == 1 and grow[0]["delta_out"] < 0.1
    new_model.eval()
    assert (new_model(x) - before).abs().max() < 0.1  # eps 0.01: the function barely moves


def test_a_call_the_schedule_skips_hands_back_what_it_was_given():
    grower = growdsl.Grower(SPEC.replace("every 1 epochs", "every 3 epochs"))
    model = grower.model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _spirals()
    assert grower.step(optimizer, (x, y)) == (model, optimizer)
    assert not grower.grew and [r["event"] for r in grower.history] == ["epoch"]


def test_a_grower_needs_a_grow_block_and_a_loss_for_a_plateau():
    with pytest.raises(SpecError, match="needs a spec with a grow block"):
        growdsl.Grower("data spirals\nmodel m { linear(4..8) tanh linear(classes) }\n")
    grower = growdsl.Grower(SPEC.replace("every 1 epochs", "when plateau(patience: 1)"))
    with pytest.raises(ValueError, match="plateau"):
        grower.step(torch.optim.SGD(grower.model.parameters(), lr=0.1), _spirals())


def test_the_docs_plain_pytorch_loop_grows_its_net(tmp_path):
    scope = runpy.run_path(str(_doc_script("grow_loop.py", tmp_path)))
    grower, model, optimizer = scope["grower"], scope["model"], scope["optimizer"]
    assert grower.graph["mlp.hidden"]["args"]["out"] > 8
    assert model is grower.model and isinstance(optimizer, torch.optim.SGD)
    assert _optimizer_covers(optimizer, model)
    assert all("momentum_buffer" in optimizer.state[p] for p in model.parameters())  # trained after growing
    assert [r["epoch"] for r in grower.history if r["event"] == "grow"][:1] == [2]


def test_the_docs_lightning_callback_grows_the_module_inside_a_real_trainer(tmp_path, monkeypatch):
    pytest.importorskip("lightning")
    monkeypatch.chdir(tmp_path)
    scope = runpy.run_path(str(_doc_script("grow_lightning.py", tmp_path)))
    grower, module, trainer = scope["grower"], scope["module"], scope["trainer"]
    assert grower.graph["mlp.hidden"]["args"]["out"] > 8
    assert module.net is grower.model
    optimizer = trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.SGD) and _optimizer_covers(optimizer, module)
    assert all("momentum_buffer" in optimizer.state[p] for p in module.parameters())
    assert trainer.current_epoch == grower.epochs


def test_a_grower_refuses_a_warmup_its_caller_owns():
    with pytest.raises(SpecError, match="warmup"):
        growdsl.Grower(SPEC.replace("optimizer: carry", "optimizer: carry, warmup: 10"))
