"""`search pathlevel(...)`: the path-level meta-controller's search loop (Cai et al. 2018;
docs/methods/pathlevel.md, "The meta-controller"; docs/search.md).

The spec's model (the base net) is trained `train.epochs` once. Then each episode:

1. the controller samples `batch` children: decisions over the base net's cells
   (`decisions.sample_edits`), each child the base net with those edits, its weights and
   optimizer state carried across them with function-keeping inits (`decisions.build_child`,
   `inherit.edited_payload`);
2. the children train `epochs` more epochs through `train_member`, on whichever backend the
   search asks for (`backends.py`), and are scored on the validation split;
3. REINFORCE updates the controller (`controller: treelstm`) with reward tan(acc · π/2), a
   moving-average baseline (decay 0.95) and an entropy bonus (weight 1e-2), by Adam at `lr`;
   `controller: random` samples uniformly through the same path and learns nothing.

After every episode the search's state (the base payload, the controller's weights, Adam's
state, the baseline, the sampling generator, the best child's payload, the log) is saved
atomically in `search_state.pt`, so `growdsl resume DIR` continues from the last finished episode
and, on the CPU, samples and trains the same children as an uninterrupted search. The best child
(highest validation accuracy; the earlier one on a tie) is the run's final net.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import torch

from growdsl import ir, plugins
from growdsl.errors import RunError
from growdsl.grow.net import Net
from growdsl.ir.edits import edit_to_json
from growdsl.lang.ast import Spec
from growdsl.run.config import TrainConfig
from growdsl.run.datasets import Splits
from growdsl.run.loop import evaluate, to_device
from growdsl.run.member import Payload, initial_payload, state_from_payload
from growdsl.run.progress import progress_enabled
from growdsl.run.rundir import write_history
from growdsl.run.single import Run, finish_run
from growdsl.search.backends import (
    InProcess,
    MemberJob,
    MemberResult,
    TrainingContext,
    make_backend,
    run_job,
    threads_per_member,
)
from growdsl.search.controller import CellTree, Controller, RandomPolicy
from growdsl.search.decisions import Decision, build_child, cell_roots, log_prob, sample_edits
from growdsl.search.driver import (
    STATE_FORMAT,
    _save,
    _summary,
    _write_log,
    _write_member,
    open_search,
)
from growdsl.search.inherit import edited_payload
from growdsl.search.methods import SearchConfig
from growdsl.search.pbt import fitness_of
from growdsl.search.progress import SearchProgress

BASELINE_DECAY = 0.95  # the paper's moving-average baseline
ENTROPY_WEIGHT = 1e-2  # the paper's entropy bonus
MAX_ACC = 0.999  # tan(acc · π/2) is infinite at acc = 1: the reward is capped at tan(0.999 · π/2) ≈ 637
SAMPLE = 256  # training samples the replaced identities' input statistics are measured on
BASE = 0  # the base net's member id; children count from 1


def reward(acc: float) -> float:
    """The paper's reward: tan(acc · π/2), acc clipped to [0, MAX_ACC] (a crash scores 0)."""
    return math.tan(min(max(acc, 0.0), MAX_ACC) * math.pi / 2)


def run_pathlevel(
    spec: Spec,
    out: str | Path | None,
    *,
    device: str | None,
    quiet: bool,
    force: bool,
    episodes_limit: int | None,
    in_process: bool,
) -> Run:
    """Train the base net, then run the controller's episodes (see the module docstring)."""
    config, search, graph, data, run_dir, text, run_id = open_search(spec, out, device=device, force=force)
    payload = initial_payload(graph, config, config.seed, config.epochs, {"spec": text})
    base = run_job(
        TrainingContext(data, config, spec.grow, threads_per_member(1), tuple(plugins.loaded())),
        MemberJob(BASE, payload, config.epochs),
    )
    if base.payload is None:
        raise RunError(f"the base net did not train: {base.error}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        controller = Controller()
    adam = torch.optim.Adam(controller.parameters(), lr=search.options["lr"])
    state: dict[str, Any] = {
        "format": STATE_FORMAT,
        "method": "pathlevel",
        "spec": text,
        "run_id": run_id,
        "episode": 0,
        "next_id": BASE + 1,
        "base": base.payload,
        "controller": controller.state_dict(),
        "adam": adam.state_dict(),
        "baseline": None,
        "generator": torch.Generator().manual_seed(config.seed).get_state(),
        "best": None,
        "log": [{"event": "base", "member": BASE, **_scores(base)}],
    }
    _save(run_dir, state)
    return search_episodes(spec, search, config, data, run_dir, state, quiet, episodes_limit, in_process)


def search_episodes(
    spec: Spec,
    search: SearchConfig,
    config: TrainConfig,
    data: Splits,
    run_dir: Path,
    state: dict[str, Any],
    quiet: bool,
    limit: int | None,
    in_process: bool,
) -> Run:
    """The controller's episodes from `state` on (a new search's or a resumed one's), then the
    best child as the run's result."""
    opts = search.options
    # a child goes on from the base net's epoch, optimizer and schedule for `epochs` more
    child_config = dataclasses.replace(config, epochs=config.epochs + opts["epochs"])
    learns = opts["controller"] == "treelstm"
    controller = Controller()
    controller.load_state_dict(state["controller"])
    adam = torch.optim.Adam(controller.parameters(), lr=opts["lr"])
    adam.load_state_dict(state["adam"])
    generator = torch.Generator()
    generator.set_state(state["generator"])
    base_graph = ir.from_json(state["base"]["graph"])
    tree = CellTree.of(base_graph, cell_roots(base_graph))
    workers = min(search.workers, opts["batch"])
    context = TrainingContext(
        data, child_config, spec.grow, threads_per_member(workers), tuple(plugins.loaded())
    )
    backend = InProcess(context) if in_process else make_backend(search.backend, context, workers)
    _write_log(run_dir, state)
    try:
        with SearchProgress(progress_enabled(quiet), opts["episodes"]) as progress:
            while state["episode"] < opts["episodes"] and (limit is None or state["episode"] < limit):
                started = time.perf_counter()
                policy = controller if learns else RandomPolicy()
                with torch.no_grad():
                    states = policy.encoder(tree) if learns else policy(tree)
                children = {}
                for _ in range(opts["batch"]):
                    edits, decisions = sample_edits(base_graph, tree, policy, states, generator)
                    seed = int(torch.randint(0, 2**31, (1,), generator=generator))
                    member = state["next_id"]
                    state["next_id"] += 1
                    payload = _child(state["base"], edits, member, data, child_config, opts["noise"], seed)
                    children[member] = (payload, decisions)
                sampled = time.perf_counter()
                results = _train(backend, children, opts["epochs"], state["episode"] + 1, progress)
                trained = time.perf_counter()
                rewards = [_record(state, r, children[r.member][1]) for r in results]
                if learns:
                    decided = [children[r.member][1] for r in results]
                    state["baseline"] = reinforce(controller, adam, tree, decided, rewards, state["baseline"])
                seconds = {
                    "sample": sampled - started,
                    "train": trained - sampled,
                    "update": time.perf_counter() - trained,
                }
                state["episode"] += 1
                state["log"].append(
                    {
                        "event": "episode",
                        "episode": state["episode"],
                        "workers": workers,
                        "mean_reward": sum(rewards) / len(rewards),
                        "baseline": state["baseline"],
                        "time": {k: round(v, 3) for k, v in seconds.items()},
                    }
                )
                state["controller"], state["adam"] = controller.state_dict(), adam.state_dict()
                state["generator"] = generator.get_state()
                for r in results:
                    _write_member(run_dir, r.member, r.payload or children[r.member][0])
                _write_log(run_dir, state)
                _save(run_dir, state)
    finally:
        backend.close()
    if state["episode"] < opts["episodes"]:  # stopped early: the state is there to resume from
        return Run(run_dir, None, None, state["log"], {"episodes": state["episode"]})  # type: ignore[arg-type]
    return _finish(spec, child_config, data, run_dir, state)


def _train(
    backend, children: dict, epochs: int, episode: int, progress: SearchProgress
) -> list[MemberResult]:
    """Train the episode's children on the backend; their results in member order (whoever
    trained them, whatever order they finished in)."""
    progress.start_leg(episode, {m: _summary(p) for m, (p, _) in children.items()})
    results = []
    for result in backend.run([MemberJob(m, p, epochs) for m, (p, _) in children.items()]):
        results.append(result)
        progress.member_done(
            result.member, (result.payload or {}).get("epoch", 0), fitness_of(result.metrics)
        )
    return sorted(results, key=lambda r: r.member)


def _child(
    base: Payload, edits, member: int, data: Splits, config: TrainConfig, noise: float, seed: int
) -> Payload:
    """A child's payload: the base net with `edits` (see `decisions.build_child`), the base's
    optimizer state carried, a `pathlevel` history line per edit (so its history replays)."""
    state = state_from_payload(base, config, torch.device("cpu"), config.epochs)
    net, carries = build_child(Net(state.graph, state.model), edits, data.train[0][:SAMPLE], noise, seed)
    lines = [
        {"event": "pathlevel", "epoch": state.epoch, "member": member, "edit": edit_to_json(e)} for e in edits
    ]
    return edited_payload(base, state, net, carries, config, seed, lines)


def _scores(result: MemberResult) -> dict[str, Any]:
    """What the log says of a trained net: validation accuracy, size, time, architecture."""
    fitness = fitness_of(result.metrics)
    graph = ir.from_json(result.payload["graph"])
    return {
        "fitness": fitness if math.isfinite(fitness) else None,
        "params": ir.param_count(graph),
        "flops": ir.flops(graph),
        "time": round(result.seconds, 3),
        "arch": _summary(result.payload),
    }


def _record(state: dict[str, Any], result: MemberResult, decisions: list[Decision]) -> float:
    """Log a child (or its crash), keep it if it is the best so far; return its reward."""
    episode, chosen = state["episode"] + 1, [d.to_json() for d in decisions]
    if result.payload is None:
        line = {"event": "crash", "episode": episode, "member": result.member, "error": result.error}
        state["log"].append({**line, "decisions": chosen})
        return 0.0
    scores = _scores(result)
    acc = (result.metrics or {}).get("acc")
    value = reward(acc) if acc is not None and math.isfinite(acc) else 0.0
    line = {"event": "evaluate", "episode": episode, "member": result.member, "decisions": chosen}
    state["log"].append({**line, "reward": value, **scores})
    best = state["best"]
    if scores["fitness"] is not None and (best is None or scores["fitness"] > best["fitness"]):
        state["best"] = {"member": result.member, "fitness": scores["fitness"], "payload": result.payload}
    return value


def reinforce(
    controller: Controller,
    adam: torch.optim.Adam,
    tree: CellTree,
    decided: list[list[Decision]],
    rewards: list[float],
    baseline: float | None,
) -> float:
    """One REINFORCE step on a batch of children: minimise -(1/B) Σ (R - b) log p(decisions)
    - (ENTROPY_WEIGHT/B) Σ H, b the moving-average `baseline` (the batch's mean reward at the
    first step). Returns the baseline moved towards the batch's mean reward."""
    mean = sum(rewards) / len(rewards)
    baseline = mean if baseline is None else baseline
    loss, states = torch.zeros(()), controller.encoder(tree)  # one encoding: the batch's tree is the same
    for decisions, value in zip(decided, rewards, strict=True):
        logp, entropy = log_prob(controller, states, decisions)
        loss = loss - (value - baseline) * logp - ENTROPY_WEIGHT * entropy
    adam.zero_grad()
    (loss / len(rewards)).backward()
    adam.step()
    return BASELINE_DECAY * baseline + (1 - BASELINE_DECAY) * mean


def _finish(spec: Spec, config: TrainConfig, data: Splits, run_dir: Path, state: dict[str, Any]) -> Run:
    """The best child becomes the run's result, tested once on the test split."""
    if state["best"] is None:
        raise RunError(f"every child of the search crashed or diverged: see {run_dir / 'search.jsonl'}")
    best = state["best"]
    trained = state_from_payload(best["payload"], config, torch.device("cpu"), config.epochs)
    test_loss, test_acc = evaluate(trained.model, to_device(data, torch.device("cpu")).test, config.loss)
    line = {"event": "best", "member": best["member"], "fitness": best["fitness"]}
    state["log"].append({**line, "test_loss": test_loss, "test_acc": test_acc})
    _write_log(run_dir, state)
    write_history(run_dir, trained.history)
    metrics = {
        "epochs": trained.epoch,
        "test_loss": test_loss,
        "test_acc": test_acc,
        "member": best["member"],
    }
    return finish_run(spec, trained, run_dir, metrics)
