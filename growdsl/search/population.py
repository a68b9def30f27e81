"""Random search and PBT-NAS: one population method (docs/search.md, docs/methods/pbt_nas.md).

A population of members is drawn from the space (`space.sample_member`) and trained in legs of
`every` epochs, each member's whole budget being `train.epochs` (a child going on from its
parent's epoch):

- `random(trials: N)`: N members, one leg of every epoch, no exploit step; the fittest on the
  validation split wins;
- `pbt(...)`: after each leg but the last, the exploit step (`pbt.plan_exploit`, who) replaces
  the bottom share by children (`inherit.child_payload`, what they inherit: PBT-NAS's mixing with
  shrink-perturb, or one mutated position); the fittest member of the last leg wins.

The state holds the members' payloads (`members`), their last fitness, the leg each was born in
and the lineage's edges, and the draws' generator (`rng`, a `random.Random`'s state). A member's
history opens with the grafts that drew it from the space (`sample` lines), so it replays.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx

from growdsl import ir
from growdsl.export import write_atomically
from growdsl.ir.edits import Graft, edit_to_json, subtree_json
from growdsl.ir.graph import ArchGraph
from growdsl.run.member import Payload, initial_payload
from growdsl.run.plots import population_figure, save_png
from growdsl.search.inherit import child_payload
from growdsl.search.pbt import plan_exploit, rank
from growdsl.search.protocol import Best, Finished, Job, Setup, new_member
from growdsl.search.registry import register_search
from growdsl.search.space import mix, mutate, sample_member

LINEAGE = "lineage.graphml"
POPULATION_PNG = "population.png"


class Population:
    """The population method (see the module docstring): `size` members trained `every` epochs a
    leg; `exploit` the pbt options of the exploit step, None for random search."""

    round_name = "leg"
    files = (LINEAGE, POPULATION_PNG)
    saves_each_job = True  # members are independent within a leg: each is logged and saved as it ends

    def __init__(self, setup: Setup, size: int, every: int, exploit: dict[str, Any] | None) -> None:
        self.setup, self.config = setup, setup.config
        self.size, self.every, self.exploit = size, every, exploit
        self.rng = random.Random()

    def start(self, state: dict[str, Any]) -> None:
        self.rng.seed(self.config.seed)
        state.update(members={}, unborn={}, fitness={}, born={}, lineage=[])
        for _ in range(self.size):  # architectures and seeds now; weights when a member first trains
            graph = sample_member(self.setup.space, self.rng)
            state["unborn"][new_member(state)] = {
                "graph": ir.to_json(graph),
                "seed": self.rng.randrange(2**31),
            }
        state["rng"] = self.rng.getstate()

    def restore(self, state: dict[str, Any]) -> None:
        self.rng.setstate(_tuples(state["rng"]))

    def rounds(self) -> int:
        return math.ceil(self.config.epochs / self.every)

    def width(self, state: dict[str, Any]) -> int:
        return len(state["members"]) + len(state.get("unborn", {}))

    def jobs(self, state: dict[str, Any]) -> Iterator[Job]:
        """Every member's next leg, in member order; a member's weights are made when its first
        job is handed out, so a large random search holds only what has started."""
        for member in sorted([*state["members"], *state.get("unborn", {})]):
            payload = state["members"].get(member) or self._born(state, member)
            yield Job(member, payload, min(self.every, self.config.epochs - payload["epoch"]))

    def record(self, state: dict[str, Any], done: Finished) -> dict[str, Any]:
        member, payload = done.job.member, done.result.payload
        state["fitness"][member] = done.fitness
        if payload is None:  # a crash: the member keeps its last payload, and ranks last
            return {}
        state["members"][member] = payload
        return {"epoch": payload["epoch"]}

    def after(self, state: dict[str, Any], done: list[Finished]) -> dict[str, Any]:
        if self.exploit is not None and state["leg"] < self.rounds():
            self._exploit(state)
        state["rng"] = self.rng.getstate()
        return {}

    def best(self, state: dict[str, Any]) -> Best | None:
        alive = {m: state["fitness"][m] for m in state["members"] if math.isfinite(state["fitness"][m])}
        if not alive:
            return None
        winner = rank(alive)[0]
        return Best(winner, state["members"][winner], alive[winner])

    def finish(self, state: dict[str, Any], run_dir: Path, best: Best) -> dict[str, Path]:
        """The lineage (GraphML) and the population's picture, for the report."""
        _write_lineage(run_dir, state)
        figure = population_figure(state["log"], [tuple(e) for e in state["lineage"]], best.member)
        save_png(figure, run_dir / POPULATION_PNG)
        caption = (
            f"the population: validation fitness over the legs, and the lineage (member {best.member} won)"
        )
        return {caption: run_dir / POPULATION_PNG}

    def _born(self, state: dict[str, Any], member: int) -> Payload:
        """A drawn member's epoch-0 payload, from its architecture and seed: its history opens with
        the grafts that turn the spec's graph into its architecture (so its history replays)."""
        drawn = state["unborn"].pop(member)
        graph = ir.from_json(drawn["graph"])
        payload = initial_payload(
            graph, self.config, drawn["seed"], self.config.epochs, {"spec": state["spec"]}
        )
        payload["history"] = [
            {"event": "sample", "epoch": 0, "member": member, "edit": edit_to_json(g)}
            for g in _sampled(self.setup.space, graph)
        ]
        state["members"][member] = payload
        state["born"][member] = 0
        return payload

    def _exploit(self, state: dict[str, Any]) -> None:
        """Replace the bottom share by children (see `pbt.py` and `inherit.py`), logging each."""
        opts, rng = self.exploit, self.rng
        fitness = {m: state["fitness"][m] for m in state["members"]}
        for step in plan_exploit(fitness, opts["replace"], opts["mode"], rng):
            parent1 = state["members"][step.parent1]
            graph1 = ir.from_json(parent1["graph"])
            child = new_member(state)
            if step.parent2 is not None:
                parent2 = state["members"][step.parent2]
                grafts, positions = mix(graph1, ir.from_json(parent2["graph"]), opts["mix"], rng)
                shrink, perturb, donor = opts["shrink"], opts["perturb"], parent2
            elif opts["mode"] == "mix":  # one parent left alive: its child is a copy of it
                grafts, positions, shrink, perturb, donor = [], [], 1.0, 0.0, None
            else:
                mutation = mutate(graph1, rng)
                grafts, positions = ([mutation[0]], [mutation[1]]) if mutation else ([], [])
                shrink, perturb, donor = 1.0, 0.0, None
            parents = [step.parent1] + ([step.parent2] if step.parent2 is not None else [])
            record = {"member": child, "parents": parents, "positions": positions}
            payload = child_payload(
                parent1, donor, grafts, self.config,
                shrink=shrink, perturb=perturb, seed=rng.randrange(2**31), record=record,
            )  # fmt: skip
            del state["members"][step.loser]
            state["members"][child] = payload
            state["fitness"][child] = state["fitness"][step.parent1]
            state["born"][child] = state["leg"]
            state["lineage"] += [[p, child] for p in parents]
            state["log"].append(
                {
                    "event": "exploit",
                    "leg": state["leg"],
                    "child": child,
                    "replaces": step.loser,
                    "parents": parents,
                    "positions": positions,
                    "mode": opts["mode"],
                    "shrink": shrink,
                    "perturb": perturb,
                }  # fmt: skip
            )


def _sampled(space: ArchGraph, graph: ArchGraph) -> list[Graft]:
    """The grafts, one per child of the root that differs, that turn `space` into `graph`."""
    return [
        Graft(child, subtree_json(graph, child))
        for child in space.children(space.root)
        if subtree_json(graph, child) != subtree_json(space, child)
    ]


def _tuples(value: Any) -> Any:
    """`random.Random.getstate()` as saved (lists where it had tuples) back to tuples."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def _write_lineage(run_dir: Path, state: dict[str, Any]) -> None:
    """Who descends from whom, as GraphML: a node per member (born at which leg, last fitness),
    an edge from each parent to its child."""
    lineage = nx.DiGraph()
    for member, leg in state["born"].items():
        fitness = state["fitness"].get(member, -math.inf)
        lineage.add_node(member, born=leg, fitness=fitness if math.isfinite(fitness) else -1.0)
    lineage.add_edges_from((a, b) for a, b in state["lineage"])
    write_atomically(run_dir / LINEAGE, lambda p: nx.write_graphml(lineage, p))


def random_search(setup: Setup) -> Population:
    """`random(trials: N)`: N members trained their whole budget in one leg, no exploit step."""
    return Population(setup, setup.search.options["trials"], setup.config.epochs, None)


def pbt_search(setup: Setup) -> Population:
    """`pbt(...)`: `population` members, an exploit step every `every` epochs."""
    opts = setup.search.options
    return Population(setup, opts["population"], opts["every"], opts)


register_search("random", random_search)
register_search("pbt", pbt_search)
