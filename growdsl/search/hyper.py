"""A member's hyperparameters and bounds, as every population-style method handles them.

A spec's `train` block may leave settings open (`growdsl/run/hparams.py`, docs/language.md,
"Hyperparameters a search draws"); `where:` bounds a member's size (`constraints.py`). A `Space`
joins the two to the architecture space, so a method draws, mixes and mutates *members*
(`Draft`: a graph and its hyperparameter values), never a graph that breaks a bound:

- `draw`: an architecture (`space.sample_member`) and a value for each open setting, redrawn
  until the architecture satisfies every bound (at most `TRIES` times, then a `SpecError` at the
  `where:` option that names the bound); a stratified population's member (`strata.py`) is its
  pick first, redrawn uniformly only when that breaks a bound;
- `retry`: the same for a child (mixed or mutated): its making is redone until it satisfies them;
- `config`: the `TrainConfig` a member trains with, its values written into the block
  (`hparams.fix_train`), so a member trains, and its `spec.grow` reads, as a plain spec;
- `retune`: a copied member's optimizer and schedule given its new values, their progress kept
  (PBT's explore step changes a learning rate in the middle of training, as Ray Tune's does).

A member's values are kept as `hparams.draw` returns them (a set's value as its index): plain
numbers, saved in a search's state as they are.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from growdsl.errors import Span, SpecError
from growdsl.ir.graph import ArchGraph
from growdsl.lang.ast import Spec
from growdsl.lang.format import format_spec
from growdsl.run.config import TrainConfig, build_optimizer, build_schedule, train_config
from growdsl.run.hparams import Hyper, corner_values, draw, fix_train, open_hparams, perturb, shown
from growdsl.search.constraints import Constraint, broken
from growdsl.search.space import sample_member
from growdsl.search.strata import Pick

TRIES = 100  # draws of a member before a bound is declared out of reach
_PROGRESS = ("last_epoch", "_step_count", "_last_lr", "_get_lr_called_within_step", "base_lrs")


@dataclass
class Draft:
    """A member before it trains: its architecture, its hyperparameters' values, and how a
    method made it (`made`: the grafts of a child, say)."""

    graph: ArchGraph
    values: dict[str, Any]
    made: Any = None


class Space:
    """The architecture space, the open settings of `spec`'s train block and the `where` bounds
    (see the module docstring). `regression` and `device` are read as the run reads them."""

    def __init__(
        self,
        spec: Spec,
        graph: ArchGraph,
        where: tuple[Constraint, ...],
        where_span: Span | None,
        regression: bool,
        device: str | None,
    ) -> None:
        self.spec, self.graph, self.where, self.where_span = spec, graph, where, where_span
        self.hypers: list[Hyper] = open_hparams(spec.train)
        self.regression, self.device = regression, device
        self._configs: dict[tuple, TrainConfig] = {}

    # ---------------------------------------------------------------- configs and specs

    def base(self) -> TrainConfig:
        """The settings of a member with every open place at its first end (a set's first value,
        a distribution's low end): what is common to all members (seed, loss, device)."""
        return self.config(self.corner_values()[0])

    def corner_values(self) -> list[dict[str, Any]]:
        """Every open place at one end of its range (`hparams.corner_values`)."""
        return corner_values(self.hypers)

    def config(self, values: dict[str, Any]) -> TrainConfig:
        """The settings a member with `values` trains with."""
        key = tuple(sorted(values.items()))
        if key not in self._configs:
            self._configs[key] = self._train(fix_train(self.spec.train, values, self.hypers))
        return self._configs[key]

    def _train(self, block) -> TrainConfig:
        config = train_config(block, regression=self.regression)
        return dataclasses.replace(config, device=self.device) if self.device else config

    def member_spec(self, values: dict[str, Any]) -> Spec:
        """The spec with a member's values written into its train block."""
        return dataclasses.replace(self.spec, train=fix_train(self.spec.train, values, self.hypers))

    def spec_text(self, values: dict[str, Any], text: str) -> str:
        """A member's spec: `text` with its values written in (`text` itself when nothing is open)."""
        return format_spec(self.member_spec(values)) if self.hypers else text

    def shown(self, values: dict[str, Any]) -> dict[str, Any]:
        """The `"hparams"` field of a member's log line ({} when nothing is open)."""
        return {"hparams": shown(values, self.hypers)} if self.hypers else {}

    # ---------------------------------------------------------------- drawing within the bounds

    def draw(self, rng: random.Random, pick: Pick | None = None) -> Draft:
        """A member drawn uniformly from the space, within the bounds (see the module docstring).
        With `pick` (a stratified population's member, `strata.py`) the first try is its pick;
        when that breaks a bound, the member is redrawn uniformly (docs/methods/pbt_nas.md, "The
        initial population")."""
        if pick is not None:
            draft = Draft(sample_member(self.graph, rng, pick), draw(self.hypers, rng, pick))
            if broken(draft.graph, self.where) is None:
                return draft
        return self.retry(lambda: Draft(sample_member(self.graph, rng), draw(self.hypers, rng)), "drawn")

    def retry(self, make: Callable[[], Draft], what: str) -> Draft:
        """`make()` again until its draft satisfies every bound; a SpecError at the bound after
        `TRIES`."""
        bound = None
        for _ in range(TRIES):
            draft = make()
            if (bound := broken(draft.graph, self.where)) is None:
                return draft
        raise SpecError(
            f"no member {what} in {TRIES} tries satisfies the bound `where: {bound.text}`",
            self.where_span,
            hint="loosen the bound, or narrow the space to architectures within it",
        )

    def perturb_one(self, values: dict[str, Any], hyper: Hyper, rng: random.Random) -> dict[str, Any]:
        """`values` with `hyper`'s value alone perturbed (an evolution's mutation of a setting)."""
        return {**values, **perturb(values, [hyper], rng)}

    def perturb(self, values: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        """PBT's explore step on a copied member's values (`hparams.perturb`)."""
        return perturb(values, self.hypers, rng) if self.hypers else dict(values)


def retune(payload: dict[str, Any], config: TrainConfig) -> dict[str, Any]:
    """`payload` (a member's) with the optimizer and schedule settings of `config`: each optimizer
    group's settings replaced by the new ones, the learning rate kept at the same point of its
    schedule (the new base rate times the schedule's current factor); the schedule's settings
    replaced, its progress kept. Another optimizer (from a set of optimizers) starts with empty
    state."""
    import torch

    fresh_opt = build_optimizer(config.optimizer, [torch.nn.Parameter(torch.zeros(1))])
    fresh_sched = build_schedule(config.schedule, fresh_opt, config.epochs)
    new = {k: v for k, v in fresh_opt.state_dict()["param_groups"][0].items() if k != "params"}
    saved = copy.deepcopy(payload["optimizer"])
    if set(saved["param_groups"][0]) - {"initial_lr"} != set(new):  # another optimizer
        saved["state"] = {}
        saved["param_groups"] = [{"params": g["params"]} for g in saved["param_groups"]]
    for group in saved["param_groups"]:
        factor = group["lr"] / group["initial_lr"] if group.get("initial_lr") else 1.0
        group.update(new)
        if fresh_sched is not None:
            group["initial_lr"] = new["lr"]
            group["lr"] = new["lr"] * factor
    out = {**payload, "optimizer": saved}
    if fresh_sched is not None and payload.get("scheduler"):
        progress = {k: v for k, v in payload["scheduler"].items() if k in _PROGRESS}
        base = [g["initial_lr"] for g in saved["param_groups"]]
        out["scheduler"] = {**fresh_sched.state_dict(), **progress, "base_lrs": base}
    return out
