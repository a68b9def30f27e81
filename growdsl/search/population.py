"""Random search and PBT-NAS: one population method (docs/search.md, docs/methods/pbt_nas.md).

A population of members is drawn from the space (`space.sample_member`; PBT's stratified as the
PBT-NAS authors' is, `strata.py`) and trained in legs of `every` epochs, each member's whole
budget being `train.epochs` (a child going on from its parent's epoch):

- `random(trials: N)`: N members, one leg of every epoch, no exploit step; the fittest on the
  validation split wins (`random_search.py`: its trials are drawn as they are handed out);
- `pbt(...)`: after each leg but the last, the exploit step (`pbt.plan_exploit`, who) replaces
  the bottom share by children (`inherit.child_payload`, what they inherit: PBT-NAS's mixing with
  shrink-perturb, or one mutated position); the fittest member of the last leg wins.

The state holds what the next legs need: the living members' payloads (`members`), their last
fitness and settings, and the draws' generator (`rng`, a `random.Random`'s state); a member
replaced by a child is forgotten there (`forget`). Who was born when and descends from whom is
read back from the log at the finish (`lineage.graphml`, the population's picture). A member's
history opens with the grafts that drew it from the space (`sample` lines), so it replays.
"""

from __future__ import annotations

import functools
import math
import random
from pathlib import Path
from typing import Any

import networkx as nx

from growdsl import ir
from growdsl.export import write_atomically
from growdsl.ir.edits import Graft, edit_to_json, subtree_json
from growdsl.ir.graph import ArchGraph
from growdsl.run.member import Payload, initial_payload
from growdsl.run.plots import population_figure, save_png
from growdsl.search.hyper import Draft, retune
from growdsl.search.inherit import child_payload, searl_weight_mutation
from growdsl.search.pbt import plan_exploit, rank
from growdsl.search.protocol import Best, Finished, Job, Setup, new_member
from growdsl.search.registry import register_search
from growdsl.search.searchlog import read_log
from growdsl.search.space import graft_all, mix, mutate
from growdsl.search.stopping import Rule, decide
from growdsl.search.strata import Strata

LINEAGE = "lineage.graphml"
SEARL_KINDS = ("copy", "weights", "gene")  # mode: searl's three children, a third each
POPULATION_PNG = "population.png"


class Population:
    """The population method (see the module docstring): `size` members trained `every` epochs a
    leg; `exploit` the pbt options of the exploit step, None for random search."""

    round_name = "leg"
    files = (LINEAGE, POPULATION_PNG)

    def __init__(
        self, setup: Setup, size: int, every: int, exploit: dict[str, Any] | None, stop: Rule | None = None
    ) -> None:
        self.setup, self.config = setup, setup.config
        self.size, self.every, self.exploit, self.stop = size, every, exploit, stop
        # members are independent within a leg, so each is logged and saved as it ends; early
        # stopping decides over the whole round's members in `after`, so it saves once a round
        self.saves_each_job = stop is None
        self.longest = max(setup.members.config(c).epochs for c in setup.members.corner_values())
        self.rng = random.Random()

    def start(self, state: dict[str, Any]) -> None:
        self.rng.seed(self.config.seed)
        new_population(state)
        # stratified as the PBT-NAS authors' first population is (random search draws its trials
        # one by one instead, `random_search.py`; docs/methods/pbt_nas.md)
        strata = Strata(self.size, self.rng)
        for index in range(self.size):
            add_member(self.setup, state, self.setup.members.draw(self.rng, strata.member(index)), self.rng)
        state["rng"] = self.rng.getstate()

    def restore(self, state: dict[str, Any]) -> None:
        self.rng.setstate(rng_state(state["rng"]))
        # a state saved before members had settings and early stopping: none drawn, none stopped
        if "hparams" not in state:  # (such a state knew every member's birth leg: `born`)
            state["hparams"] = {member: {} for member in state["born"]}
        for key, empty in (("results", {}), ("stopped", []), ("rungs", {})):
            state.setdefault(key, empty)

    def rounds(self) -> int:
        return math.ceil(self.longest / self.every)

    def width(self, state: dict[str, Any]) -> int:
        return len(state["members"])

    def jobs(self, state: dict[str, Any]) -> list[Job]:
        return [job for member in sorted(state["members"]) if (job := self.next_leg(state, member))]

    def next_leg(self, state: dict[str, Any], member: int) -> Job | None:
        """`member`'s next job: `every` epochs, fewer at the end of its own budget; None when it
        has none left or early stopping stopped it."""
        payload, config = state["members"][member], self.setup.members.config(state["hparams"][member])
        epochs = min(self.every, config.epochs - payload["epoch"])
        if epochs <= 0 or member in state["stopped"]:
            return None
        return Job(member, payload, epochs, config=config)

    def record(self, state: dict[str, Any], done: Finished) -> dict[str, Any]:
        member, payload = done.job.member, done.result.payload
        state["fitness"][member] = done.fitness
        if payload is None:  # a crash: the member keeps its last payload, and ranks last
            return {}
        state["members"][member] = payload
        state["results"].setdefault(member, []).append(done.fitness)
        return {"epoch": payload["epoch"], **self.setup.members.shown(state["hparams"][member])}

    def after(self, state: dict[str, Any], done: list[Finished]) -> dict[str, Any]:
        if self.exploit is not None and state["leg"] < self.rounds():
            self._exploit(state)
        if self.stop is not None:
            self._stop(state, [d.job.member for d in done if d.result.payload is not None])
        state["rng"] = self.rng.getstate()
        return {}

    def best(self, state: dict[str, Any]) -> Best | None:
        alive = {m: state["fitness"][m] for m in state["members"] if math.isfinite(state["fitness"][m])}
        if not alive:
            return None
        winner = rank(alive)[0]
        return member_best(self.setup, state, winner, alive[winner])

    def finish(self, state: dict[str, Any], run_dir: Path, best: Best) -> dict[str, Path]:
        """The lineage (GraphML) and the population's picture, for the report."""
        log = read_log(run_dir)
        exploits = [line for line in log if line["event"] == "exploit"]
        edges = [(parent, line["child"]) for line in exploits for parent in line["parents"]]
        write_lineage(run_dir, log, self.round_name, edges)
        figure = population_figure(log, edges, best.member)
        save_png(figure, run_dir / POPULATION_PNG)
        caption = (
            f"the population: validation fitness over the legs, and the lineage (member {best.member} won)"
        )
        return {caption: run_dir / POPULATION_PNG}

    def _stop(self, state: dict[str, Any], trained: list[int]) -> None:
        """Early stopping (`stopping.py`): the members the rule stops now, each a `stop` line."""
        members = self.setup.members
        for trained_member in trained:  # a member's own budget: the rule never stops one at its end
            epochs = members.config(state["hparams"][trained_member]).epochs
            for stop in decide(self.stop, state["results"], [trained_member], state["rungs"], epochs):
                state["stopped"].append(stop.member)
                state["log"].append({"event": "stop", "leg": state["leg"], "member": stop.member,
                                     "rule": self.stop.name, "epoch": stop.epoch, "fitness": stop.fitness,
                                     "cutoff": stop.cutoff})  # fmt: skip

    def _exploit(self, state: dict[str, Any]) -> None:
        """Replace the bottom share by children (see `pbt.py` and `inherit.py`), logging each."""
        opts, rng, members = self.exploit, self.rng, self.setup.members
        fitness = {m: state["fitness"][m] for m in state["members"]}
        pairs = opts["mode"] == "mix" and opts["donor"] == "other"  # else one parent a child
        for step in plan_exploit(fitness, opts["replace"], "mix" if pairs else "mutate", rng):
            parent1 = state["members"][step.parent1]
            graph1 = ir.from_json(parent1["graph"])
            parent2 = state["members"][step.parent2] if step.parent2 is not None else None
            if opts["mode"] == "mix" and opts["donor"] == "self":  # the authors' mix_with_itself
                parent2 = parent1
            make = functools.partial(self._child, parent1, graph1, parent2, state["hparams"][step.parent1])
            draft = members.retry(make, "made by exploit")
            made = draft.made
            child = new_member(state)
            parents = [step.parent1] + ([step.parent2] if step.parent2 is not None else [])
            record = {"member": child, "parents": parents, "positions": made["positions"]}
            payload = child_payload(
                parent1, made["donor"], made["grafts"], self.config,
                shrink=made["shrink"], perturb=made["perturb"], seed=rng.randrange(2**31), record=record,
            )  # fmt: skip
            if made.get("searl") == "weights":
                payload["model"] = searl_weight_mutation(payload["model"], rng)
            if members.hypers:
                payload = retune(payload, members.config(draft.values))
                payload["spec"] = members.spec_text(draft.values, state["spec"])
            forget(state, step.loser)
            state["members"][child] = payload
            state["hparams"][child] = draft.values
            state["fitness"][child] = state["fitness"][step.parent1]
            state["log"].append(
                {
                    "event": "exploit",
                    "leg": state["leg"],
                    "child": child,
                    "replaces": step.loser,
                    "parents": parents,
                    "positions": made["positions"],
                    "mode": opts["mode"],
                    **({"donor": "self"} if opts["donor"] == "self" and opts["mode"] == "mix" else {}),
                    **({"searl": made["searl"]} if "searl" in made else {}),
                    "shrink": made["shrink"],
                    "perturb": made["perturb"],
                    **members.shown(draft.values),
                }  # fmt: skip
            )

    def _child(
        self, parent1: Payload, graph1: ArchGraph, parent2: Payload | None, values: dict[str, Any]
    ) -> Draft:
        """One try at a child of `parent1` (whose graph is `graph1`; and `parent2`, the donor when
        mixing): its grafts and
        positions, the donor of the grafted layers with their shrink and perturb, and its
        hyperparameters (parent 1's `values`, perturbed as PBT explores), as a draft whose graph
        the bounds are checked on. `mode: searl` makes, a third of the time each, a copy, a copy
        whose weights get SEARL's mutation (`searl_weight_mutation`), or a copy with one position
        redrawn to another value whose layers are drawn afresh (shrink 0, perturb 1)."""
        opts, rng = self.exploit, self.rng
        copy = {"grafts": [], "positions": [], "shrink": 1.0, "perturb": 0.0, "donor": None}
        if parent2 is not None:
            grafts, positions = mix(graph1, ir.from_json(parent2["graph"]), opts["mix"], rng)
            made = {"grafts": grafts, "positions": positions, "shrink": opts["shrink"],
                    "perturb": opts["perturb"], "donor": parent2}  # fmt: skip
        elif opts["mode"] == "mix":  # one parent left alive: its child is a copy of it
            made = copy
        elif opts["mode"] == "searl":
            made = {**copy, "searl": SEARL_KINDS[rng.randrange(len(SEARL_KINDS))]}
            if made["searl"] == "gene" and (mutation := mutate(graph1, rng, other=True)):
                fresh = {"shrink": 0.0, "perturb": 1.0, "donor": parent1}  # 0 · its own + 1 · fresh
                made.update(grafts=[mutation[0]], positions=[mutation[1]], **fresh)
        else:
            mutation = mutate(graph1, rng)
            made = {**copy, "grafts": [mutation[0]], "positions": [mutation[1]]} if mutation else copy
        return Draft(graft_all(graph1, made["grafts"]), self.setup.members.perturb(values, rng), made)


def new_population(state: dict[str, Any]) -> None:
    """A population's keys in a new search's `state`, with no member yet."""
    state.update(members={}, fitness={}, hparams={})
    state.update(results={}, stopped=[], rungs={})  # early stopping's (`stopping.py`)


def add_member(setup: Setup, state: dict[str, Any], draft: Draft, rng: random.Random) -> int:
    """A new member drawn from the space: its epoch-0 payload (its settings its own, its spec
    with its values), its history opening with the grafts that turn the spec's graph into its
    architecture (so its history replays). Shared by every method that draws members."""
    member, config = new_member(state), setup.members.config(draft.values)
    spec = setup.members.spec_text(draft.values, state["spec"])
    payload = initial_payload(draft.graph, config, rng.randrange(2**31), config.epochs, {"spec": spec})
    payload["history"] = [
        {"event": "sample", "epoch": 0, "member": member, "edit": edit_to_json(g)}
        for g in _sampled(setup.space, draft.graph)
    ]
    state["members"][member] = payload
    state["hparams"][member] = draft.values
    return member


def forget(state: dict[str, Any], member: int) -> None:
    """`member` will not train again and cannot win: its payload, fitness, settings and results
    leave the state, which then holds what the search's living members need and not its past
    (the log keeps that: `search.jsonl`)."""
    for key in ("members", "fitness", "hparams", "results"):
        state.get(key, {}).pop(member, None)


def member_best(setup: Setup, state: dict[str, Any], member: int, fitness: float) -> Best:
    """The winner `member`, with its own settings and spec when it drew hyperparameters."""
    values, members = state["hparams"][member], setup.members
    if not members.hypers:
        return Best(member, state["members"][member], fitness)
    payload = state["members"][member]
    return Best(member, payload, fitness, members.config(values), members.member_spec(values))


def _sampled(space: ArchGraph, graph: ArchGraph) -> list[Graft]:
    """The grafts, one per child of the root that differs, that turn `space` into `graph`."""
    return [
        Graft(child, subtree_json(graph, child))
        for child in space.children(space.root)
        if subtree_json(graph, child) != subtree_json(space, child)
    ]


def rng_state(value: Any) -> Any:
    """`random.Random.getstate()` as saved (lists where it had tuples) back to tuples."""
    return tuple(rng_state(v) for v in value) if isinstance(value, (list, tuple)) else value


def write_lineage(
    run_dir: Path, log: list[dict[str, Any]], round_name: str, edges: list[tuple[int, int]]
) -> None:
    """Who descends from whom, as GraphML, from the search's log: a node per member trained (born
    the round before its first `evaluate` or `crash` line: 0 for a first member, the exploit step's
    or the cycle's for a child; its last fitness, -1 when none), an edge from each parent to its
    child."""
    born: dict[int, int] = {}
    fitness: dict[int, float | None] = {}
    for line in log:
        if line["event"] in ("evaluate", "crash"):
            born.setdefault(line["member"], line[round_name] - 1)
            fitness[line["member"]] = line.get("fitness")  # None when not finite; a crash has none
    lineage = nx.DiGraph()
    for member in sorted(born):
        last = fitness[member]
        lineage.add_node(member, born=born[member], fitness=-1.0 if last is None else last)
    lineage.add_edges_from(edges)
    write_atomically(run_dir / LINEAGE, lambda p: nx.write_graphml(lineage, p))


def pbt_search(setup: Setup) -> Population:
    """`pbt(...)`: `population` members, an exploit step every `every` epochs."""
    opts = setup.search.options
    return Population(setup, opts["population"], opts["every"], opts)


register_search("pbt", pbt_search)
