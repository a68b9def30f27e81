"""Regularized evolution (Real et al. 2019, "aging evolution"): docs/search.md, docs/methods/evolution.md.

`evolution(population: P, sample: S, cycles: C)`: P members drawn from the space
(`hyper.Space.draw`, within the `where` bounds, their open train settings drawn too) train their
whole budget in the first round. Then each round is one cycle: S members are sampled uniformly
(without replacement) from the living population, the fittest of them is the parent, and its child
(one mutation: one position redrawn to another value, `space.mutate`, or, when the train block
leaves settings open, as likely one setting perturbed, `hparams.perturb` on that setting alone)
is trained from scratch, as the paper's children are; when it is trained it joins the population
and the OLDEST member dies, whatever its fitness (the regularization: a good architecture survives
only by being re-found, so no lucky evaluation lives forever). The winner is the fittest member
ever trained, dead or alive (the paper reports the best model of the whole history).

The state holds what the next cycles need: the living members' payloads in age order (`alive`,
oldest first), their fitness and hyperparameters, the best member's (its payload kept apart), the
next child (`pending`, made after a round so that a resumed search trains the same child) and the
draws' generator; a dead member that is not the best is forgotten there. Each cycle is an
`{"event": "evolve", ...}` line: the sample, the parent, the child, what was mutated, and the
member removed; the lineage is read back from those lines at the finish.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from growdsl import ir
from growdsl.search.hyper import Draft
from growdsl.search.pbt import rank
from growdsl.search.population import LINEAGE, add_member, forget, member_best, rng_state, write_lineage
from growdsl.search.protocol import Best, Finished, Job, Setup
from growdsl.search.registry import register_search
from growdsl.search.searchlog import read_log
from growdsl.search.space import graft_all, mutate, positions


class Evolution:
    """Regularized evolution (see the module docstring)."""

    round_name = "round"  # round 1 trains the first population, round k + 1 cycle k's child
    files = (LINEAGE,)

    def __init__(self, setup: Setup, size: int, sample: int, cycles: int) -> None:
        self.setup, self.config = setup, setup.config
        self.size, self.sample, self.cycles = size, min(sample, size), cycles
        self.rng = random.Random()

    def start(self, state: dict[str, Any]) -> None:
        self.rng.seed(self.config.seed)
        state.update(members={}, fitness={}, hparams={}, alive=[])
        state.update(pending=None, best=None, best_payload=None)
        for _ in range(self.size):
            state["alive"].append(add_member(self.setup, state, self.setup.members.draw(self.rng), self.rng))
        state["rng"] = self.rng.getstate()

    def restore(self, state: dict[str, Any]) -> None:
        self.rng.setstate(rng_state(state["rng"]))

    def rounds(self) -> int:
        return 1 + self.cycles

    def width(self, state: dict[str, Any]) -> int:
        return self.size

    def jobs(self, state: dict[str, Any]) -> list[Job]:
        todo = state["alive"] if state["pending"] is None else [state["pending"]["child"]]
        jobs = []
        for member in todo:
            config = self.setup.members.config(state["hparams"][member])
            jobs.append(Job(member, state["members"][member], config.epochs, config=config))
        return jobs

    def record(self, state: dict[str, Any], done: Finished) -> dict[str, Any]:
        member, payload = done.job.member, done.result.payload
        state["fitness"][member] = done.fitness
        fields = self.setup.members.shown(state["hparams"][member])
        if payload is None:  # a crash: the member lives on unfit until it is the oldest
            return fields
        state["members"][member] = payload
        best = state["best"]
        if math.isfinite(done.fitness) and (best is None or done.fitness > state["fitness"][best]):
            state["best"] = member
            state["best_payload"] = payload
            if best is not None and best not in state["alive"]:  # the best no longer: forgotten now
                forget(state, best)
        return {"epoch": payload["epoch"], **fields}

    def after(self, state: dict[str, Any], done: list[Finished]) -> dict[str, Any]:
        if state["pending"] is not None:
            self._age(state)
        if state["leg"] < self.rounds():
            self._next_child(state)
        state["rng"] = self.rng.getstate()
        return {"alive": len(state["alive"])}

    def best(self, state: dict[str, Any]) -> Best | None:
        member = state["best"]
        if member is None:
            return None
        state["members"].setdefault(member, state["best_payload"])  # a dead winner's payload
        return member_best(self.setup, state, member, state["fitness"][member])

    def finish(self, state: dict[str, Any], run_dir: Path, best: Best) -> dict[str, Path]:
        log = read_log(run_dir)
        edges = [(line["parent"], line["child"]) for line in log if line["event"] == "evolve"]
        write_lineage(run_dir, log, self.round_name, edges)
        return {}

    def _age(self, state: dict[str, Any]) -> None:
        """The trained child joins, the oldest member dies; the cycle's line."""
        cycle = state.pop("pending")
        state["pending"] = None
        oldest = state["alive"].pop(0)
        state["alive"].append(cycle["child"])
        if oldest == state["best"]:  # its payload is kept apart (`best_payload`), its records stay
            del state["members"][oldest]
        else:
            forget(state, oldest)
        state["log"].append({"event": "evolve", "cycle": state["leg"] - 1, **cycle, "removed": oldest})

    def _next_child(self, state: dict[str, Any]) -> None:
        """Sample, pick the fittest as parent, make its child (within the bounds)."""
        rng, members = self.rng, self.setup.members
        sampled = rng.sample(state["alive"], self.sample)
        parent = rank({m: state["fitness"][m] for m in sampled})[0]
        graph = ir.from_json(state["members"][parent]["graph"])
        values = state["hparams"][parent]
        draft = members.retry(lambda: self._mutant(graph, values), "mutated")
        child = add_member(self.setup, state, draft, rng)
        made = {"sample": sorted(sampled), "parent": parent, "child": child, "mutated": draft.made}
        state["pending"] = made

    def _mutant(self, graph: ir.ArchGraph, values: dict[str, Any]) -> Draft:
        """One mutation of the parent (see the module docstring): what changed is `made`."""
        members, rng = self.setup.members, self.rng
        hypers = members.hypers
        if hypers and rng.random() * (len(hypers) + len(positions(graph))) < len(hypers):
            hyper = rng.choice(hypers)
            return Draft(graph, members.perturb_one(values, hyper, rng), hyper.key)
        mutation = mutate(graph, rng)
        if mutation is None:
            return Draft(graph, dict(values), None)
        return Draft(graft_all(graph, [mutation[0]]), dict(values), mutation[1])


def evolution_search(setup: Setup) -> Evolution:
    """`evolution(population: P, sample: S, cycles: C)`."""
    opts = setup.search.options
    return Evolution(setup, opts["population"], opts["sample"], opts["cycles"])


register_search("evolution", evolution_search)
