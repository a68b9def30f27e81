"""`search pathlevel(...)`: the path-level meta-controller as a search method (Cai et al. 2018;
docs/methods/pathlevel.md, "The meta-controller"; docs/search.md), run by the one loop
(`driver.py`); an episode is its round.

The spec's model (the base net) is trained `train.epochs` once. Then each episode:

1. the controller samples `batch` children: decisions over the base net's cells
   (`decisions.sample_edits`, the encoder re-run on the cell before every decision), each child
   the base net with those edits, its weights carried across them with function-keeping inits
   (`decisions.build_child`);
2. the children train `epochs` epochs with a fresh SGD (`child_lr`, momentum 0.9, Nesterov,
   weight decay 1e-4) on a cosine schedule over those `epochs` (the authors'
   `run_config_for_validation`, arch_search_tree_cell.py), through `train_member`, on whichever
   backend the search asks for (`backends.py`), and are scored on the validation split;
3. REINFORCE updates the controller (`controller: treelstm`) with reward tan(acc · π/2), the
   authors' baseline (`ArchManager.update_baseline`, arch_manager.py: b starts at the base net's
   reward and moves b ← b + 0.95 (mean R − b) *before* the advantages R − b are taken), an
   entropy bonus (weight 1e-2) and the gradient's norm clipped at 40 (`RLTrainer.update_controller`,
   rl_trainer.py), by Adam at `lr`; `controller: random` samples uniformly through the same path
   and learns nothing.

`where:` bounds (docs/search.md, "Constraints") are honoured where the child is drawn, without a
redraw (which would bias the estimate): every path-level edit keeps or adds params and FLOPs, so
an upper bound (`<`, `<=`) is kept by masking out, at each decision, the choices whose edit would
break it (REINFORCE reads the masks as sampled: the gradient of the masked policy). A child that
still breaks a bound (only a lower one can) is not trained: it is a `skip` line in the log, and
counts in its episode's REINFORCE step with reward 0, as a crashed child does, so the controller
learns to avoid it.

The method's part of the search's state (saved by the loop after every episode) is the base
payload, the controller's weights, Adam's state, the baseline, the sampling generator and the
best child's payload, so a resumed search, on the CPU, samples and trains the same children as
an uninterrupted one. The best child (highest validation accuracy; the earlier one on a tie) is
the run's final net.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from growdsl import ir, plugins
from growdsl.errors import RunError
from growdsl.grow.net import Net
from growdsl.ir.cost import costs
from growdsl.ir.edits import edit_to_json, fold
from growdsl.run.config import Method, TrainConfig, build_optimizer, build_schedule
from growdsl.run.datasets import Splits
from growdsl.run.loop import TrainState
from growdsl.run.member import Payload, initial_payload, state_from_payload
from growdsl.search.backends import MemberJob, TrainingContext, run_job, threads_per_member
from growdsl.search.constraints import broken, ceilings, satisfied
from growdsl.search.controller import Controller, RandomPolicy
from growdsl.search.decisions import Decision, build_child, log_prob, sample_edits
from growdsl.search.pbt import fitness_of
from growdsl.search.protocol import Best, Finished, Job, Setup, new_member, scores
from growdsl.search.registry import register_search

BASELINE_STEP = 0.95  # the authors' `decay`: the share of the way the baseline moves to the batch's mean
ENTROPY_WEIGHT = 1e-2  # the authors' entropy penalty
MAX_GRAD_NORM = 40.0  # the authors' gradient clip (rl_trainer.py)
# the authors' child training: SGD, momentum 0.9, Nesterov, weight decay 1e-4 (lr: `child_lr`)
CHILD_SGD = {"momentum": 0.9, "dampening": 0.0, "weight_decay": 1e-4, "nesterov": True}
MAX_ACC = 0.999  # tan(acc · π/2) is infinite at acc = 1: the reward is capped at tan(0.999 · π/2) ≈ 637
SAMPLE = 256  # training samples the replaced identities' input statistics are measured on


def reward(acc: float) -> float:
    """The paper's reward: tan(acc · π/2), acc clipped to [0, MAX_ACC] (a crash scores 0)."""
    return math.tan(min(max(acc, 0.0), MAX_ACC) * math.pi / 2)


class PathLevel:
    """The path-level method (see the module docstring). Between the calls of one process it keeps
    the controller, its Adam and the sampling generator, made from the state by `restore` and
    written back by `after`."""

    round_name = "episode"
    files = ()

    def __init__(self, setup: Setup) -> None:
        self.setup, self.opts = setup, setup.search.options
        # a child trains `epochs` more epochs with a fresh SGD on a cosine schedule (see `_child`)
        self.config = dataclasses.replace(
            setup.config,
            epochs=setup.config.epochs + self.opts["epochs"],
            optimizer=Method("sgd", {"lr": self.opts["child_lr"], **CHILD_SGD}),
            schedule=Method("cosine", {"min_lr": 0.0}),
        )
        self.learns = self.opts["controller"] == "treelstm"
        self.generator = torch.Generator()
        self.where = setup.members.where
        upper = ceilings(self.where)
        self.fits = (lambda graph: satisfied(graph, upper)) if upper else None
        self.skipped: list[tuple[int, list[Decision]]] = []  # this episode's children not trained

    def start(self, state: dict[str, Any]) -> None:
        """Train the base net; the controller's first weights, its Adam, the sampling generator."""
        config = self.setup.config
        base = new_member(state)
        payload = initial_payload(
            self.setup.space, config, config.seed, config.epochs, {"spec": state["spec"]}
        )
        context = TrainingContext(
            self.setup.data, config, self.setup.spec.grow, threads_per_member(1), tuple(plugins.loaded())
        )
        trained = run_job(context, MemberJob(base, payload, config.epochs))
        if trained.payload is None:
            raise RunError(f"the base net did not train: {trained.error}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            controller = Controller()
        state.update(
            base=trained.payload,
            controller=controller.state_dict(),
            adam=torch.optim.Adam(controller.parameters(), lr=self.opts["lr"]).state_dict(),
            baseline=_reward_of_metrics(trained.metrics),  # the authors' start: the base net's reward
            generator=torch.Generator().manual_seed(config.seed).get_state(),
            best=None,
        )
        state["log"].append({"event": "base", "member": base, **scores(trained, fitness_of(trained.metrics))})

    def restore(self, state: dict[str, Any]) -> None:
        with torch.random.fork_rng(devices=[]):  # loaded next: nothing drawn from torch's global RNG
            self.controller = Controller()
        self.controller.load_state_dict(state["controller"])
        self.adam = torch.optim.Adam(self.controller.parameters(), lr=self.opts["lr"])
        self.adam.load_state_dict(state["adam"])
        self.generator.set_state(state["generator"])
        self.base_graph = ir.from_json(state["base"]["graph"])

    def rounds(self) -> int:
        return self.opts["episodes"]

    def width(self, state: dict[str, Any]) -> int:
        return self.opts["batch"]

    def jobs(self, state: dict[str, Any]) -> Iterator[Job]:
        """The episode's `batch` children, each sampled by the controller (its decisions the job's
        note) when the backend asks for it; one that breaks a `where:` bound is logged as a `skip`
        and kept for `after` instead (see the module docstring)."""
        policy = self.controller if self.learns else RandomPolicy()
        self.skipped = []
        for _ in range(self.opts["batch"]):
            edits, decisions = sample_edits(self.base_graph, policy, self.generator, self.fits)
            seed = int(torch.randint(0, 2**31, (1,), generator=self.generator))
            member = new_member(state)
            bound = broken(child := fold(self.base_graph, edits), self.where) if self.where else None
            if bound is not None:
                self.skipped.append((member, decisions))
                params, flops = costs(child)[child.root]
                state["log"].append({"event": "skip", "episode": state["leg"] + 1, "member": member,
                                     "decisions": [d.to_json() for d in decisions], "bound": bound.text,
                                     "reward": 0.0, "params": params, "flops": flops})  # fmt: skip
                continue
            payload = _child(
                state["base"],
                edits,
                member,
                self.setup.data,
                self.setup.config,
                self.config,
                self.opts["noise"],
                seed,
            )
            yield Job(member, payload, self.opts["epochs"], decisions)

    def record(self, state: dict[str, Any], done: Finished) -> dict[str, Any]:
        """The child's decisions and reward; the best child so far kept (the earlier on a tie)."""
        chosen = [d.to_json() for d in done.job.note]
        if done.result.payload is None:
            return {"decisions": chosen}
        best = state["best"]
        if math.isfinite(done.fitness) and (best is None or done.fitness > best["fitness"]):
            state["best"] = {
                "member": done.job.member,
                "fitness": done.fitness,
                "payload": done.result.payload,
            }
        return {"decisions": chosen, "reward": _reward_of(done)}

    def after(self, state: dict[str, Any], done: list[Finished]) -> dict[str, Any]:
        """REINFORCE on the episode's children, a skipped one with reward 0 (not for the random
        controller)."""
        children = sorted(
            [(d.job.member, d.job.note, _reward_of(d)) for d in done]
            + [(member, decisions, 0.0) for member, decisions in self.skipped],
            key=lambda child: child[0],
        )
        rewards = [reward for _, _, reward in children]
        if self.learns:
            decided = [decisions for _, decisions, _ in children]
            state["baseline"] = reinforce(self.controller, self.adam, decided, rewards, state["baseline"])
        state["controller"], state["adam"] = self.controller.state_dict(), self.adam.state_dict()
        state["generator"] = self.generator.get_state()
        return {"mean_reward": sum(rewards) / len(rewards), "baseline": state["baseline"]}

    def best(self, state: dict[str, Any]) -> Best | None:
        best = state["best"]
        return None if best is None else Best(best["member"], best["payload"], best["fitness"])

    def finish(self, state: dict[str, Any], run_dir: Path, best: Best) -> dict[str, Path]:
        return {}


def _reward_of(done: Finished) -> float:
    """A child's reward: `reward` of its validation accuracy; 0 for a crash (or no accuracy)."""
    return _reward_of_metrics(done.result.metrics)


def _reward_of_metrics(metrics: dict[str, Any] | None) -> float:
    acc = (metrics or {}).get("acc")
    return reward(acc) if acc is not None and math.isfinite(acc) else 0.0


def _child(
    base: Payload,
    edits,
    member: int,
    data: Splits,
    base_config: TrainConfig,
    config: TrainConfig,
    noise: float,
    seed: int,
) -> Payload:
    """A child's payload: the base net (read with `base_config`) with `edits` (see
    `decisions.build_child`), a fresh optimizer (`config`'s SGD) on a cosine schedule over the
    child's own epochs (config.epochs less the base's), a `pathlevel` history line per edit (so
    its history replays)."""
    state = state_from_payload(base, base_config, torch.device("cpu"), base_config.epochs)
    net, _ = build_child(Net(state.graph, state.model), edits, data.train[0][:SAMPLE], noise, seed)
    lines = [
        {"event": "pathlevel", "epoch": state.epoch, "member": member, "edit": edit_to_json(e)} for e in edits
    ]
    optimizer = build_optimizer(config.optimizer, net.model.parameters())
    # the cosine spans the child's epochs, from its first: torch keeps T_max in the scheduler's
    # state, so `state_from_payload` (which builds it over config.epochs) loads this span back
    scheduler = build_schedule(config.schedule, optimizer, config.epochs - state.epoch)
    shuffle = torch.Generator().manual_seed(seed)
    child = TrainState(
        net.graph, net.model, optimizer, scheduler, shuffle, state.epoch, [*state.history, *lines]
    )
    return {**child.checkpoint_payload(), **{k: v for k, v in base.items() if k in ("spec", "device")}}


def reinforce(
    controller: Controller,
    adam: torch.optim.Adam,
    decided: list[list[Decision]],
    rewards: list[float],
    baseline: float,
) -> float:
    """One REINFORCE step on a batch of children, as the authors' `update_meta_controller`
    (arch_manager.py) and `update_controller` (rl_trainer.py) take it: first the baseline moves,
    b ← b + BASELINE_STEP (mean R − b); then, unless every R − b is the same (the authors skip
    that step), minimise -(1/B) Σ (R - b) log p(decisions) - (ENTROPY_WEIGHT/B) Σ H by one Adam
    step with the gradient's norm clipped at MAX_GRAD_NORM. Returns the moved baseline."""
    mean = sum(rewards) / len(rewards)
    baseline = baseline + BASELINE_STEP * (mean - baseline)
    advantages = [r - baseline for r in rewards]
    if max(advantages) == min(advantages):
        return baseline
    loss, encoded = torch.zeros(()), {}  # children that passed through the same tree share its encoding
    for decisions, advantage in zip(decided, advantages, strict=True):
        logp, entropy = log_prob(controller, decisions, encoded)
        loss = loss - advantage * logp - ENTROPY_WEIGHT * entropy
    adam.zero_grad()
    (loss / len(rewards)).backward()
    torch.nn.utils.clip_grad_norm_(controller.parameters(), MAX_GRAD_NORM)
    adam.step()
    return baseline


register_search("pathlevel", PathLevel)
