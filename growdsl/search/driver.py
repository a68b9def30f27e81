"""The population search loop: draw members, train them anywhere, rank, replace, write it all down.

`run_search(spec, out)` runs the spec's `search` block (docs/search.md):

- `random(trials: N)`: N architectures drawn from the space, each trained `train.epochs`; the
  fittest on the validation split wins;
- `pbt(...)`: a population trained `every` epochs at a time; after each leg but the last, the
  exploit step (`pbt.plan_exploit`) replaces the bottom share by children (`inherit.child_payload`:
  PBT-NAS's mixing with shrink-perturb, or one mutated position); `train.epochs` is each
  member's whole budget, a child going on from its parent's epoch;
- `pathlevel(...)`: the path-level meta-controller, whose episode loop is `pathlevel.py` (it
  shares this module's run directory files and state saving).

The driver only decides; members train through a backend (`backends.py`) that exchanges
checkpoint payloads. After every leg the search's state (members' payloads, fitness, the
driver's random state, the log) is saved atomically, so `growdsl resume DIR` continues an
interrupted search and ends where the uninterrupted one ends. The run directory holds
`search.jsonl` (a line per member evaluation, crash and exploit), `members/<id>/history.jsonl`,
`lineage.graphml`, and the fittest member as the run's result: `history.jsonl` (its history,
which replays to its architecture), `model.pt`, `final.grow`, `graph.json`, report, exports.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from pathlib import Path
from typing import Any, NamedTuple

import networkx as nx
import torch

from growdsl import ir, lang, plugins, strict_json
from growdsl.errors import CheckpointError, RunError
from growdsl.export import write_atomically
from growdsl.ir.edits import Graft, edit_to_json, subtree_json
from growdsl.ir.graph import ArchGraph
from growdsl.lang.ast import Spec
from growdsl.run.config import TrainConfig, train_config
from growdsl.run.datasets import DataInfo, Splits, describe
from growdsl.run.loop import evaluate, to_device
from growdsl.run.member import Payload, initial_payload, state_from_payload
from growdsl.run.plots import population_figure, save_png
from growdsl.run.progress import progress_enabled
from growdsl.run.rundir import (
    SPEC,
    check_identity,
    claim,
    load_run_plugins,
    make_run_dir,
    releases_claims,
    remove_stale,
    write_history,
    write_identity,
    write_text,
)
from growdsl.run.single import Run, finish_run, load_splits, refuse_to_overwrite, spec_text
from growdsl.search.backends import (
    InProcess,
    MemberJob,
    MemberResult,
    TrainingContext,
    make_backend,
    threads_per_member,
)
from growdsl.search.inherit import child_payload
from growdsl.search.methods import SearchConfig, search_config
from growdsl.search.pbt import fitness_of, plan_exploit, rank
from growdsl.search.progress import SearchProgress
from growdsl.search.space import mix, mutate, sample_member

STATE = "search_state.pt"
LOG = "search.jsonl"
MEMBERS = "members"
LINEAGE = "lineage.graphml"
POPULATION_PNG = "population.png"
SEARCH_FILES = (STATE, LOG, LINEAGE, POPULATION_PNG)  # written besides a run's files
STATE_FORMAT = 1


def is_search_dir(run_dir: str | Path) -> bool:
    return (Path(run_dir) / STATE).is_file()


@releases_claims
def run_search(
    spec: Spec,
    out: str | Path | None = None,
    *,
    device: str | None = None,
    quiet: bool = False,
    force: bool = False,
    legs_limit: int | None = None,
    in_process: bool = False,
) -> Run:
    """Run the spec's search; write its run directory. `legs_limit` stops after that many
    training legs (leaving the state to resume from, as an interruption would); `in_process`
    trains every member in this process whatever the backend (with the backend's threads per
    member: the reference a parallel backend must match). `device` overrides `train.device`."""
    if spec.search is not None and spec.search.method.name == "pathlevel":
        from growdsl.search.pathlevel import run_pathlevel  # imports this module's file helpers

        return run_pathlevel(spec, out, device=device, quiet=quiet, force=force, episodes_limit=legs_limit,
                             in_process=in_process)  # fmt: skip
    config, search, space, data, run_dir, text, run_id = open_search(spec, out, device=device, force=force)
    rng = random.Random(config.seed)
    size = search.options["trials"] if search.method == "random" else search.options["population"]
    state: dict[str, Any] = {"format": STATE_FORMAT, "spec": text, "run_id": run_id, "leg": 0, "next_id": 0,
                             "members": {}, "fitness": {}, "log": [], "lineage": [], "born": {}}  # fmt: skip
    for _ in range(size):
        _add_member(state, sample_member(space, rng), space, config, rng, born=0)
    state["rng"] = rng.getstate()
    _save(run_dir, state)  # resumable from leg 0, as a run is from epoch 0
    return _search(spec, search, config, data, run_dir, state, quiet, legs_limit, in_process)


@releases_claims
def resume_search(
    run_dir: str | Path, *, device: str | None = None, quiet: bool = False, in_process: bool = False
) -> Run:
    """Continue the search in `run_dir` from its saved state (the last finished leg); refused
    while another process owns the folder, or when the state belongs to another search."""
    run_dir = Path(run_dir)
    _own(run_dir)
    load_run_plugins(run_dir)
    state = _load_state(run_dir)
    check_identity(run_dir, state, STATE)
    spec = lang.parse_text(state["spec"], str(run_dir / SPEC))
    info = describe(spec.data)
    config = _config(spec, info, device)
    data = load_splits(spec, info, config.seed)
    go_on = _search
    if state.get("method") == "pathlevel":
        from growdsl.search.pathlevel import search_episodes as go_on
    return go_on(spec, search_config(spec.search), config, data, run_dir, state, quiet, None, in_process)


def _search(
    spec: Spec,
    search: SearchConfig,
    config: TrainConfig,
    data: Splits,
    run_dir: Path,
    state: dict[str, Any],
    quiet: bool,
    legs_limit: int | None,
    in_process: bool,
) -> Run:
    rng = random.Random()
    rng.setstate(_tuples(state["rng"]))
    _write_log(run_dir, state)
    legs = _legs(search, config)
    workers = min(search.workers, len(state["members"]))
    context = TrainingContext(data, config, spec.grow, threads_per_member(workers), tuple(plugins.loaded()))
    backend = InProcess(context) if in_process else make_backend(search.backend, context, workers)
    try:
        with SearchProgress(progress_enabled(quiet), legs) as progress:
            while state["leg"] < legs and (legs_limit is None or state["leg"] < legs_limit):
                started = time.perf_counter()
                compute = _train_leg(state, search, config, backend, run_dir, progress)
                trained = time.perf_counter()
                if state["leg"] < legs:
                    _exploit(state, search, config, rng)
                seconds = {
                    "train": trained - started,
                    "compute": compute,
                    "exploit": time.perf_counter() - trained,
                }
                timing = {k: round(v, 3) for k, v in seconds.items()}
                state["log"].append({"event": "leg", "leg": state["leg"], "workers": workers, "time": timing})
                state["rng"] = rng.getstate()
                _save(run_dir, state)
    finally:
        backend.close()
    if state["leg"] < legs:  # stopped early: the state is there to resume from
        return _partial(run_dir, state)
    return _finish(spec, config, data, run_dir, state)


class Opening(NamedTuple):
    """What a new search starts from: its settings, the lowered space, the data splits, and the
    run folder it now owns, with the spec as run and the run id its state must carry."""

    config: TrainConfig
    search: SearchConfig
    graph: ArchGraph
    data: Splits
    run_dir: Path
    text: str
    run_id: str


def open_search(spec: Spec, out: str | Path | None, *, device: str | None, force: bool) -> Opening:
    """Every search's first steps: check the spec's settings and load the data before a folder
    is made, then make the run folder, own it (`_own`), and give it its identity and spec."""
    info = describe(spec.data)
    config = _config(spec, info, device)
    search = search_config(spec.search)
    graph = ir.lower(spec, info.input_shape, info.classes)
    data = load_splits(spec, info, config.seed)
    refuse_to_overwrite(spec.file, out)
    run_dir = make_run_dir(out, graph.root, force=force)
    _own(run_dir)
    text = spec_text(spec)
    run_id = write_identity(run_dir, text)
    write_text(run_dir / SPEC, text)
    return Opening(config, search, graph, data, run_dir, text, run_id)


def _config(spec: Spec, info: DataInfo, device: str | None) -> TrainConfig:
    config = train_config(spec.train, regression=info.classes is None)
    return dataclasses.replace(config, device=device) if device else config


def _legs(search: SearchConfig, config: TrainConfig) -> int:
    """How many training legs the search has: one for random search, `epochs / every` for PBT."""
    return 1 if search.method == "random" else math.ceil(config.epochs / search.options["every"])


def _add_member(
    state: dict[str, Any],
    graph: ArchGraph,
    space: ArchGraph,
    config: TrainConfig,
    rng: random.Random,
    born: int,
) -> int:
    """A new member drawn from the space: its epoch-0 payload, its history opening with the
    grafts that turn the spec's graph into its architecture (so its history replays)."""
    member = state["next_id"]
    state["next_id"] += 1
    payload = initial_payload(graph, config, rng.randrange(2**31), config.epochs, {"spec": state["spec"]})
    payload["history"] = [
        {"event": "sample", "epoch": 0, "member": member, "edit": edit_to_json(g)}
        for g in _sampled(space, graph)
    ]
    state["members"][member] = payload
    state["born"][member] = born
    return member


def _sampled(space: ArchGraph, graph: ArchGraph) -> list[Graft]:
    """The grafts, one per child of the root that differs, that turn `space` into `graph`."""
    return [
        Graft(child, subtree_json(graph, child))
        for child in space.children(space.root)
        if subtree_json(graph, child) != subtree_json(space, child)
    ]


def _train_leg(state, search: SearchConfig, config: TrainConfig, backend, run_dir: Path, progress) -> float:
    """Train every member for one leg; record each one's fitness (a crash: -inf, logged). Returns
    the seconds the members' training took, added up (each job's own wall time)."""
    every = config.epochs if search.method == "random" else search.options["every"]
    jobs = [
        MemberJob(m, p, min(every, config.epochs - p["epoch"])) for m, p in sorted(state["members"].items())
    ]
    progress.start_leg(state["leg"] + 1, {m: _summary(p) for m, p in state["members"].items()})
    results = []
    for result in backend.run(jobs):  # in the order they finish
        results.append(result)
        fitness = fitness_of(result.metrics) if result.payload is not None else -math.inf
        progress.member_done(result.member, (result.payload or {}).get("epoch", 0), fitness)
    for result in sorted(results, key=lambda r: r.member):  # logged in member order, whoever ran them
        _record(state, result)
    state["leg"] += 1
    for member, payload in state["members"].items():
        _write_member(run_dir, member, payload)
    _write_log(run_dir, state)
    return sum(r.seconds for r in results)


def _record(state: dict[str, Any], result: MemberResult) -> None:
    member, leg = result.member, state["leg"] + 1
    if result.payload is None:
        state["fitness"][member] = -math.inf
        state["log"].append({"event": "crash", "leg": leg, "member": member, "error": result.error})
        return
    state["members"][member] = result.payload
    fitness = fitness_of(result.metrics)
    state["fitness"][member] = fitness
    graph = ir.from_json(result.payload["graph"])
    state["log"].append(
        {
            "event": "evaluate",
            "leg": leg,
            "member": member,
            "epoch": result.payload["epoch"],
            "fitness": fitness if math.isfinite(fitness) else None,
            "params": ir.param_count(graph),
            "flops": ir.flops(graph),
            "time": round(result.seconds, 3),
            "arch": _summary(result.payload),
        }
    )


def _exploit(state: dict[str, Any], search: SearchConfig, config: TrainConfig, rng: random.Random) -> None:
    """Replace the bottom share by children (see `pbt.py` and `inherit.py`), logging each."""
    opts = search.options
    fitness = {m: state["fitness"][m] for m in state["members"]}
    for step in plan_exploit(fitness, opts["replace"], opts["mode"], rng):
        parent1 = state["members"][step.parent1]
        graph1 = ir.from_json(parent1["graph"])
        child = state["next_id"]
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
            parent1,
            donor,
            grafts,
            config,
            shrink=shrink,
            perturb=perturb,
            seed=rng.randrange(2**31),
            record=record,
        )
        state["next_id"] += 1
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


def _finish(spec: Spec, config: TrainConfig, data: Splits, run_dir: Path, state: dict[str, Any]) -> Run:
    """The fittest member of the last leg becomes the run's result (tested on the test split)."""
    alive = {m: state["fitness"][m] for m in state["members"] if math.isfinite(state["fitness"][m])}
    if not alive:
        raise RunError(f"every member of the search crashed or diverged: see {run_dir / LOG}")
    best = rank(alive)[0]
    payload = state["members"][best]
    device = torch.device("cpu")
    trained = state_from_payload(payload, config, device, config.epochs)
    test_loss, test_acc = evaluate(trained.model, to_device(data, device).test, config.loss)
    line = {
        "event": "best",
        "member": best,
        "fitness": alive[best],
        "test_loss": test_loss,
        "test_acc": test_acc,
    }
    state["log"].append(line)
    _write_log(run_dir, state)
    write_history(run_dir, trained.history)
    _write_lineage(run_dir, state)
    metrics = {"epochs": trained.epoch, "test_loss": test_loss, "test_acc": test_acc, "member": best}
    figure = population_figure(state["log"], [tuple(e) for e in state["lineage"]], best)
    save_png(figure, run_dir / POPULATION_PNG)
    caption = f"the population: validation fitness over the legs, and the lineage (member {best} won)"
    return finish_run(spec, trained, run_dir, metrics, {caption: run_dir / POPULATION_PNG})


def _partial(run_dir: Path, state: dict[str, Any]) -> Run:
    """What a search stopped before its end returns: the folder and the log so far."""
    return Run(run_dir, None, None, state["log"], {"legs": state["leg"]})  # type: ignore[arg-type]


# ---------------------------------------------------------------- files


def _summary(payload: Payload) -> str:
    """A short description of a member's architecture: its weight ops' widths and kernels."""
    graph = ir.from_json(payload["graph"])
    parts = []
    for node in graph.ops():
        attrs = graph[node]
        if attrs["op"] in ("linear", "conv", "sepconv"):
            k = f"k{attrs['args']['k']}" if "k" in attrs["args"] else ""
            parts.append(f"{attrs['op']}{attrs['args']['out']}{k}")
    return " ".join(parts)


def _own(run_dir: Path) -> None:
    """Hold the folder's lock as a single run does (growdsl/run/rundir.py), and remove the
    temporary files a killed write left, the search's and its members' included. (A path that is
    no folder is left for `_load_state` to report.)"""
    if not run_dir.is_dir():
        return
    claim(run_dir, SEARCH_FILES)
    remove_stale(run_dir, SEARCH_FILES)  # a folder claimed by make_run_dir knew only the run's files
    for folder in (run_dir / MEMBERS).glob("*"):
        if folder.is_dir():
            remove_stale(folder)


def _save(run_dir: Path, state: dict[str, Any]) -> None:
    write_atomically(run_dir / STATE, lambda p: torch.save(state, p))


def _load_state(run_dir: Path) -> dict[str, Any]:
    path = run_dir / STATE
    if not path.is_file():
        raise CheckpointError(f"{run_dir} holds no search to resume ({STATE} is missing)")
    try:
        state = torch.load(path, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user-facing error
        raise CheckpointError(f"{path} cannot be read as a growdsl search state: {e}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path} is not a growdsl search state of format {STATE_FORMAT}")
    return state


def _tuples(value: Any) -> Any:
    """`random.Random.getstate()` as saved (lists where it had tuples) back to tuples."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def _write_log(run_dir: Path, state: dict[str, Any]) -> None:
    text = "".join(strict_json.dumps(line) + "\n" for line in state["log"])
    write_text(run_dir / LOG, text)


def _write_member(run_dir: Path, member: int, payload: Payload) -> None:
    folder = run_dir / MEMBERS / str(member)
    folder.mkdir(parents=True, exist_ok=True)
    write_history(folder, payload["history"])


def _write_lineage(run_dir: Path, state: dict[str, Any]) -> None:
    """Who descends from whom, as GraphML: a node per member (born at which leg, last fitness),
    an edge from each parent to its child."""
    lineage = nx.DiGraph()
    for member, leg in state["born"].items():
        fitness = state["fitness"].get(member, -math.inf)
        lineage.add_node(member, born=leg, fitness=fitness if math.isfinite(fitness) else -1.0)
    lineage.add_edges_from((a, b) for a, b in state["lineage"])
    write_atomically(run_dir / LINEAGE, lambda p: nx.write_graphml(lineage, p))
