"""What a child of the population inherits (docs/methods/pbt_nas.md, "Inheritance").

A child starts as parent 1: its architecture, weights, optimizer state, schedule position, epoch
count and history. Each position taken from parent 2 is a `Graft` edit applied through the one
weight carry (`growdsl.grow.surgery.carry`); the grafted layers then get PBT-NAS's shrink-perturb,
`θ = shrink · θ_donor + perturb · θ_init`, with `θ_init` a fresh default initialisation drawn for
the child (batch-norm running statistics too; their step counter is the donor's). Where the
donor's tensor and the child's differ in shape (the layer before the graft has another width in
parent 1), the formula holds on the overlapping block and the rest is `θ_init`; a consumer after
the graft keeps parent 1's columns where they overlap (the carry's rule). The optimizer state
follows the carry: parent 1's, where a parameter keeps its name and shape. In mutation mode the
redrawn position is a graft too, with no donor: weights are inherited where shapes allow.
"""

from __future__ import annotations

import math
import random
from typing import Any

import torch

from growdsl.grow.carry import carried_optimizer
from growdsl.grow.net import Net
from growdsl.grow.surgery import Carry, Init, carry, fresh_tensors
from growdsl.ir.edits import Graft, edit_to_json
from growdsl.run.config import TrainConfig, build_optimizer, build_schedule
from growdsl.run.loop import TrainState
from growdsl.run.member import Payload, state_from_payload


def shrink_perturb(
    node: str, donor: dict[str, torch.Tensor], shrink: float, perturb: float, seed: int
) -> Init:
    """The `init` of a graft at `node`: every tensor under it becomes `shrink · donor + perturb ·
    fresh` (see the module docstring), `fresh` drawn from a generator seeded by `seed`."""

    def init(net: Net, _done: Carry) -> None:
        state = net.model.state_dict()
        keys = [k for k in state if k.startswith(node + ".")]
        fresh = fresh_tensors(net.graph, keys, torch.Generator().manual_seed(seed), net)
        for key in keys:
            if key not in donor:
                continue
            value = donor[key].to(state[key].device)
            if not state[key].is_floating_point():
                state[key].copy_(value)  # a batch norm's step counter
                continue
            mixed = fresh[key].clone()
            block = tuple(slice(0, min(a, b)) for a, b in zip(value.shape, mixed.shape, strict=True))
            mixed[block] = shrink * value[block].to(mixed) + perturb * fresh[key][block]
            state[key].copy_(mixed)

    return init


SEARL = {"strength": 0.1, "fraction": 0.1, "super_strength": 10.0, "super_prob": 0.05, "reset_prob": 0.10}
SEARL_LIMIT = 1e6  # the hard limit SEARL clamps a mutated weight to


def searl_weight_mutation(weights: dict[str, torch.Tensor], rng: random.Random) -> dict[str, torch.Tensor]:
    """SEARL's weight mutation (`classic_parameter_mutation`, as the PBT-NAS authors vectorised
    it): a random number (1 to all) of the weight tensors of two or more dimensions is chosen;
    in each, every entry is mutated with probability n / rows, n drawn from [0, ceil(0.1 rows));
    a mutated entry is, with probability 0.05, moved by N(0, |10 w|) (a super mutation), with
    probability 0.05 reset to N(0, 1), else moved by N(0, |0.1 w|); then clamped to ±1e6.
    docs/methods/pbt_nas.md, "The SEARL baseline". Returns new tensors; `weights` is untouched."""
    out = dict(weights)
    keys = [k for k, w in weights.items() if w.is_floating_point() and w.dim() > 1]
    if not keys:
        return out
    generator = torch.Generator().manual_seed(rng.randrange(2**31))
    for key in rng.sample(keys, rng.randint(1, len(keys))):
        w = weights[key].clone()
        rows = w.shape[0]
        chance = rng.randrange(math.ceil(SEARL["fraction"] * rows)) / rows
        mutated = torch.rand(w.shape, generator=generator) < chance
        kind = torch.rand(w.shape, generator=generator)
        noise = torch.randn(w.shape, generator=generator)
        superm = mutated & (kind < SEARL["super_prob"])
        reset = mutated & (kind > SEARL["super_prob"]) & (kind < SEARL["reset_prob"])
        normal = mutated & (kind > SEARL["reset_prob"])
        w = torch.where(superm, w + noise * (SEARL["super_strength"] * w).abs(), w)
        w = torch.where(reset, noise, w)
        w = torch.where(normal, w + noise * (SEARL["strength"] * w).abs(), w)
        out[key] = w.clamp(-SEARL_LIMIT, SEARL_LIMIT)
    return out


def child_payload(
    parent1: Payload,
    parent2: Payload | None,
    grafts: list[Graft],
    config: TrainConfig,
    *,
    shrink: float,
    perturb: float,
    seed: int,
    record: dict[str, Any],
) -> Payload:
    """The payload of a child of `parent1` (and `parent2`, the donor of every graft, in mix mode):
    parent 1's state with the grafts carried, shrink-perturbed where parent 2 gave the layer.
    `record` (member, parents, positions) goes into a `mix` history line per graft, with the
    edit, so the child's history replays to its architecture. The child's shuffling generator is
    seeded by `seed`."""
    cpu = torch.device("cpu")
    state = state_from_payload(parent1, config, cpu, config.epochs)
    net = Net(state.graph, state.model)
    generator = torch.Generator().manual_seed(seed)
    carries, lines = [], []
    for i, graft in enumerate(grafts):
        init = None
        if parent2 is not None:
            init = shrink_perturb(graft.node, parent2["model"], shrink, perturb, seed + 1 + i)
        net, done = carry(net, graft, init, generator)
        carries.append(done)
        lines.append({"event": "mix", "epoch": state.epoch, **record, "edit": edit_to_json(graft)})
    return edited_payload(parent1, state, net, carries, config, seed, lines)


def edited_payload(
    parent: Payload,
    state: TrainState,
    net: Net,
    carries: list[Carry],
    config: TrainConfig,
    seed: int,
    lines: list[dict[str, Any]],
) -> Payload:
    """The payload of `net`, made from `parent` (whose training state is `state`) by the edits of
    `carries`: the optimizer state carried, the schedule at the parent's position (spanning
    `config.epochs`), the parent's epoch and history with `lines` (the edits' records) after it,
    a shuffling generator seeded by `seed`."""
    optimizer = carried_optimizer(
        state.optimizer, state.model, net.model, carries, lambda p: build_optimizer(config.optimizer, p)
    )
    scheduler = build_schedule(config.schedule, optimizer, config.epochs)
    if scheduler is not None and state.scheduler is not None:
        scheduler.load_state_dict(state.scheduler.state_dict())
    shuffle = torch.Generator().manual_seed(seed)
    history = [*state.history, *lines]
    child = TrainState(net.graph, net.model, optimizer, scheduler, shuffle, state.epoch, history)
    # the global generators' states are the parent's (restored with its state); the shuffle is new
    return {**child.checkpoint_payload(), **{k: v for k, v in parent.items() if k in ("spec", "device")}}
