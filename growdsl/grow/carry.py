"""Optimizer carry-over across a growth step: the new optimizer holds the old one's param groups
(hyper-parameters and schedule position) and per-parameter state, carried like the weights
(`growdsl.grow.surgery.carry_optimizer_state`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from growdsl.grow.surgery import Carry, carry_optimizer_state
from growdsl.lazy import nn, torch


def carried_optimizer(
    old_opt: torch.optim.Optimizer,
    old_model: nn.Module,
    new_model: nn.Module,
    carries: list[Carry],
    make_optimizer: Callable[[Any], torch.optim.Optimizer],
) -> torch.optim.Optimizer:
    """A new optimizer over `new_model` whose state is the old one's, parameter by parameter
    (matched by name through every carry in order: renamed, re-indexed, copied). Each parameter
    stays in the param group of the one it came from; a brand-new parameter joins the first group
    and starts without state."""
    names = {id(p): name for name, p in old_model.named_parameters()}
    old_sd = old_opt.state_dict()
    named: dict[str, dict[str, Any]] = {}
    group_of: dict[str, int] = {}
    index = 0  # state_dict numbers the parameters group after group
    for g, group in enumerate(old_opt.param_groups):
        for param in group["params"]:
            group_of[names[id(param)]] = g
            if index in old_sd["state"]:
                named[names[id(param)]] = dict(old_sd["state"][index])
            index += 1
    for done in carries:
        named = carry_optimizer_state(named, done)
        group_of = {new: group_of.get(s.key, 0) for new, s in done.sources.items() if s.key in group_of}
    members: dict[int, list[str]] = {}
    for name, _ in new_model.named_parameters():
        members.setdefault(group_of.get(name, 0), []).append(name)
    params = dict(new_model.named_parameters())
    order = sorted(members)
    new_opt = make_optimizer([{"params": [params[n] for n in members[g]]} for g in order])
    state, groups, index = {}, [], 0
    for g in order:
        hyper = {k: v for k, v in old_sd["param_groups"][g].items() if k != "params"}
        groups.append({**hyper, "params": list(range(index, index + len(members[g])))})
        for name in members[g]:
            if name in named:
                state[index] = named[name]
            index += 1
    new_opt.load_state_dict({"state": state, "param_groups": groups})
    return new_opt
