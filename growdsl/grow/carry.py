"""Optimizer carry-over across a growth step: the new optimizer holds the old one's hyper-
parameters, schedule position and per-parameter state, re-indexed like the weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from growdsl.grow.surgery import IndexMaps, carry_state
from growdsl.lazy import nn, torch


def carried_optimizer(
    old_opt: torch.optim.Optimizer,
    old_model: nn.Module,
    new_model: nn.Module,
    index_maps: list[IndexMaps],
    make_optimizer: Callable[[Any], torch.optim.Optimizer],
) -> torch.optim.Optimizer:
    """A new optimizer over `new_model` whose state is the old one's, parameter by parameter
    (matched by name); a grown parameter's state is re-indexed by `index_maps` (a copied neuron
    keeps its source's momentum), a brand-new parameter starts without state."""
    old_names = {id(p): name for name, p in old_model.named_parameters()}
    old_sd = old_opt.state_dict()
    old_params = [p for group in old_opt.param_groups for p in group["params"]]
    named: dict[str, dict[str, torch.Tensor]] = {}
    for index, param in enumerate(old_params):
        if index in old_sd["state"]:
            named[old_names[id(param)]] = dict(old_sd["state"][index])
    for maps in index_maps:
        carry_state(named, maps)
    new_opt = make_optimizer(new_model.parameters())
    new_names = [name for name, _ in new_model.named_parameters()]
    groups = [
        {
            **{k: v for k, v in old_sd["param_groups"][0].items() if k != "params"},
            "params": list(range(len(new_names))),
        }
    ]
    state = {i: named[name] for i, name in enumerate(new_names) if name in named}
    new_opt.load_state_dict({"state": state, "param_groups": groups})
    return new_opt
