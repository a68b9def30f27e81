"""The search loop: one loop for every search method, owning what they all share.

`run_search(spec, out)` runs the spec's `search` block (docs/search.md); `resume_search(dir)`
continues an interrupted one. The method (`protocol.Search`) comes from the registry
(`registry.search_factory`), by the spec's name for a new search and by the name its state
records on resume; it only decides (which jobs, what a result means, what happens after a round,
who won). The loop does the rest, the same for every method:

- the folder: made and locked as a run's (growdsl/run/rundir.py), its identity and spec written,
  stale temporary files removed;
- the rounds: each round the method's jobs, drawn lazily, train through a backend
  (`backends.py`, payloads exchanged) and come back as they finish; the live table follows
  them; then each job's `evaluate` (or `crash`) line is logged in member order, whoever ran it,
  with the method's fields, the trained members' histories are written
  (`members/<id>/history.jsonl`), the method's `after` runs, and the round's line
  (`{"event": <round name>, ..., "time": {"train", "compute", "after"}}`) closes it;
- the state: after every round (and every job, for a method that `saves_each_job`) the search's
  state (the loop's keys and the method's, one dict) is saved atomically in `search_state.pt`,
  so `growdsl resume DIR` goes on from the last save and ends where the uninterrupted search
  ends; the log `search.jsonl` is appended to after each save, never rewritten, and cut back on
  resume to what the state covers (`searchlog.py`);
- the finish: the method's winner, tested once on the test split (a `best` line), becomes the
  run's result: `history.jsonl` (which replays to its architecture), `model.pt`, `final.grow`,
  `graph.json`, report, exports, and the method's own files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from growdsl import ir, lang, plugins
from growdsl.errors import CheckpointError, RunError, SearchDivergedError
from growdsl.export import write_atomically
from growdsl.lang.ast import Spec
from growdsl.run.datasets import describe
from growdsl.run.loop import evaluate, to_device
from growdsl.run.member import Payload, state_from_payload
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
    Cluster,
    InProcess,
    MemberJob,
    TrainingContext,
    check_placement,
    connect,
    make_backend,
    threads_per_member,
)
from growdsl.search.hyper import Space
from growdsl.search.methods import search_config
from growdsl.search.pbt import fitness_of
from growdsl.search.progress import SearchProgress
from growdsl.search.protocol import Finished, Job, Search, Setup, scores, summary
from growdsl.search.registry import search_factory
from growdsl.search.searchlog import (
    LOG,
    append,
    commit,
    in_member_order,
    new_log,
    read_log,
    reconcile,
    upgrade,
)

STATE = "search_state.pt"
MEMBERS = "members"
SEARCH_FILES = (STATE, LOG)  # written besides a run's files (and a method's own: `Search.files`)
# 2: one state layout for every method, the method's name in it; 3: the log appended to, the state
# holding only the lines not written yet and the log's length before them (`searchlog.py`)
STATE_FORMAT = 3


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
    """Run the spec's search; write its run directory. `legs_limit` stops after that many rounds
    (leaving the state to resume from, as an interruption would); `in_process` trains every
    member in this process whatever the backend (with the backend's threads per member: the
    reference a parallel backend must match). `device` overrides `train.device`."""
    setup = _setup(spec, device, quiet)  # the spec's mistakes and the data before any folder is made
    refuse_to_overwrite(spec.file, out)
    check_placement(setup.search.backend, setup.config.device, in_process)  # before the folder, too
    cluster = connect(setup.search.backend, setup.search.workers, quiet, in_process)  # before the folder
    # --force over an earlier search: its state, log and members go too, so the folder holds one search
    run_dir = make_run_dir(out, setup.space.root, force=force, leftovers=(*SEARCH_FILES, MEMBERS))
    _own(run_dir)
    run_id = write_identity(run_dir, setup.text)
    name = setup.search.method
    state: dict[str, Any] = {"format": STATE_FORMAT, "method": name, "spec": setup.text, "run_id": run_id,
                             "leg": 0, "next_id": 0, **new_log(), "started": False}  # fmt: skip
    _commit(run_dir, state)  # a search from here on: a kill from now on leaves a state to resume from
    write_text(run_dir / SPEC, setup.text)
    method = search_factory(name)(setup)
    return _search(setup, method, run_dir, state, quiet, legs_limit, in_process, cluster)


@releases_claims
def resume_search(
    run_dir: str | Path, *, device: str | None = None, quiet: bool = False, in_process: bool = False
) -> Run:
    """Continue the search in `run_dir` from its saved state (the last finished round), with the
    method its state names; refused while another process owns the folder, or when the state
    belongs to another search."""
    run_dir = Path(run_dir)
    _own(run_dir)
    load_run_plugins(run_dir)
    state = _load_state(run_dir)
    check_identity(run_dir, state, STATE)
    setup = _setup(lang.parse_text(state["spec"], str(run_dir / SPEC)), device, quiet, state["spec"])
    check_placement(setup.search.backend, setup.config.device, in_process)
    cluster = connect(setup.search.backend, setup.search.workers, quiet, in_process)
    write_text(run_dir / SPEC, setup.text)  # a search killed before its spec was written has it now
    method = search_factory(state["method"])(setup)
    return _search(setup, method, run_dir, state, quiet, None, in_process, cluster)


def _setup(spec: Spec, device: str | None, quiet: bool = True, text: str | None = None) -> Setup:
    """The search's settings (each mistake a SpecError at its place), its space and its data
    (their reading's progress shown unless `quiet`)."""
    info = describe(spec.data)
    search = search_config(spec.search)
    space = ir.lower(spec, info.input_shape, info.classes)
    where = spec.search.method.keywords.get("where")
    members = Space(spec, space, search.options["where"], where and where.span, info.classes is None, device)
    config = members.base()
    data = load_splits(spec, info, config.seed, quiet)
    return Setup(spec, search, config, space, data, spec_text(spec) if text is None else text, members)


def _search(
    setup: Setup,
    method: Search,
    run_dir: Path,
    state: dict[str, Any],
    quiet: bool,
    limit: int | None,
    in_process: bool,
    cluster: Cluster | None,
) -> Run:
    """The rounds from `state` on (a new search's or a resumed one's), then the finish."""
    remove_stale(run_dir, method.files)
    reconcile(run_dir, state)  # a resumed search's log is its state's: lines after the last save go
    if not state.get("started", True):  # the method's first members (a resumed search: now)
        method.start(state)
        state["started"] = True
        _commit(run_dir, state)  # resumable from round 0, as a run is from epoch 0
    method.restore(state)
    rounds = method.rounds()
    # no job left (0) when every round is done: a search killed while it finished resumes into its finish
    workers = max(1, min(setup.search.workers, method.width(state)))
    context = TrainingContext(
        setup.data, method.config, setup.spec.grow, threads_per_member(workers), tuple(plugins.loaded())
    )
    backend = (
        InProcess(context) if in_process else make_backend(setup.search.backend, context, workers, cluster)
    )
    try:
        with SearchProgress(progress_enabled(quiet), rounds) as progress:
            while state["leg"] < rounds and (limit is None or state["leg"] < limit):
                _round(method, state, backend, run_dir, progress, workers)
    finally:
        backend.close()
    if state["leg"] < rounds:  # stopped early: the state is there to resume from
        return Run(run_dir, None, None, read_log(run_dir), {f"{method.round_name}s": state["leg"]})  # type: ignore[arg-type]
    return _finish(setup, method, run_dir, state)


def _round(method: Search, state: dict[str, Any], backend, run_dir: Path, progress, workers: int) -> None:
    """One round (see the module docstring), its state saved and its lines logged at the end (and
    as each job finishes, for a method that `saves_each_job`)."""
    started = time.perf_counter()
    progress.start_round(state["leg"] + 1)
    jobs: dict[int, Job] = {}
    partial = state.get("partial")
    if partial is None or partial["leg"] != state["leg"]:  # a new round (not one resumed halfway)
        # `done`: the members finished (and saved); `open`: those handed out and not finished
        partial = state["partial"] = {"leg": state["leg"], "done": [], "open": []}
    as_they_finish = getattr(method, "saves_each_job", False)
    saved = set(partial["done"])

    def handed() -> Iterator[MemberJob]:  # drawn when the backend asks: a job's note stays here
        last = -1
        for job in method.jobs(state):
            if job.member in saved:  # finished and saved before the search was stopped
                continue
            if as_they_finish and job.member < last:  # the log's order rests on it (`in_member_order`)
                raise RunError(f"the search method handed member {job.member} after {last}: "
                               "a method that saves each job yields its jobs in member order")  # fmt: skip
            jobs[job.member] = job
            last = job.member
            if partial["open"] is not None and job.member not in partial["open"]:
                partial["open"].append(job.member)
            progress.job_started(job.member, summary(job.payload))
            yield MemberJob(job.member, job.payload, job.epochs, job.config)

    finished = []
    for result in backend.run(handed()):  # in the order they finish
        fitness = fitness_of(result.metrics) if result.payload is not None else -math.inf
        progress.member_done(result.member, (result.payload or {}).get("epoch", 0), fitness)
        done = Finished(jobs[result.member], result, fitness)
        finished.append(done)
        if as_they_finish:  # logged and saved now: a kill loses no finished job
            _record(method, state, done)
            partial["done"].append(done.job.member)
            if partial["open"] is not None:
                partial["open"].remove(done.job.member)
            _write_member(run_dir, done.job.member, result.payload or done.job.payload)
            _commit(run_dir, state, in_member_order(state["log"], partial["open"]))
    trained = time.perf_counter()
    finished.sort(key=lambda done: done.job.member)
    if not as_they_finish:
        for done in finished:
            _record(method, state, done)
            _write_member(run_dir, done.job.member, done.result.payload or done.job.payload)
    in_member_order(state["log"], [])  # the round's lines, whoever ran them and whenever they finished
    state["partial"] = None
    state["leg"] += 1
    fields = method.after(state, finished)
    seconds = {
        "train": trained - started,
        "compute": sum(done.result.seconds for done in finished),
        "after": time.perf_counter() - trained,
    }
    name = method.round_name
    timing = {k: round(v, 3) for k, v in seconds.items()}
    state["log"].append({"event": name, name: state["leg"], "workers": workers, **fields, "time": timing})
    _commit(run_dir, state)


def _record(method: Search, state: dict[str, Any], done: Finished) -> None:
    """A finished job's log line: `evaluate` with its scores, or `crash` with its error; the
    method's fields after the member's id."""
    fields = method.record(state, done)
    where = {method.round_name: state["leg"] + 1, "member": done.job.member}
    if done.result.payload is None:
        placed = {"device": done.result.device} if done.result.device else {}
        state["log"].append({"event": "crash", **where, "error": done.result.error, **placed, **fields})
    else:
        state["log"].append({"event": "evaluate", **where, **fields, **scores(done.result, done.fitness)})


def _finish(setup: Setup, method: Search, run_dir: Path, state: dict[str, Any]) -> Run:
    """The method's winner becomes the run's result, tested once on the test split."""
    best = method.best(state)
    if best is None:
        lines = read_log(run_dir)
        errors = [line["error"] for line in lines if line["event"] == "crash"]
        if errors and all(error.startswith("DivergenceError") for error in errors):
            raise SearchDivergedError(f"every member of the search diverged: see {run_dir / LOG}")
        skipped = [line for line in lines if line["event"] == "skip"]
        if skipped and not errors:  # nothing trained: every member broke a `where:` bound
            bounds = ", ".join(sorted({f"`{line['bound']}`" for line in skipped}))
            raise RunError(
                f"no member of the search was trained: all {len(skipped)} broke the bound {bounds} of "
                f"`where:` (loosen it, or widen the choices): see {run_dir / LOG}"
            )
        raise RunError(f"every member of the search crashed or diverged: see {run_dir / LOG}")
    config, device = best.config or method.config, torch.device("cpu")
    trained = state_from_payload(best.payload, config, device, config.epochs)
    test_loss, test_acc = evaluate(trained.model, to_device(setup.data, device).test, config.loss)
    line = {"event": "best", "member": best.member, "fitness": best.fitness}
    append(run_dir, [{**line, "test_loss": test_loss, "test_acc": test_acc}])
    write_history(run_dir, trained.history)
    pictures = method.finish(state, run_dir, best)
    metrics = {"epochs": trained.epoch, "test_loss": test_loss, "test_acc": test_acc, "member": best.member}
    return finish_run(best.spec or setup.spec, trained, run_dir, metrics, pictures)


# ---------------------------------------------------------------- files


def _own(run_dir: Path) -> None:
    """Hold the folder's lock as a single run does (growdsl/run/rundir.py), and remove the
    temporary files a killed write left, the search's and its members' included (the method's
    own once it is known). A path that is no folder is left for `_load_state` to report."""
    if not run_dir.is_dir():
        return
    claim(run_dir, SEARCH_FILES)
    remove_stale(run_dir, SEARCH_FILES)  # a folder claimed by make_run_dir knew only the run's files
    for folder in (run_dir / MEMBERS).glob("*"):
        if folder.is_dir():
            remove_stale(folder)


def _commit(run_dir: Path, state: dict[str, Any], ready: int | None = None) -> None:
    """Save the state atomically, then log the first `ready` of its lines not logged yet (all of
    them when None; `searchlog.commit`)."""
    ready = len(state["log"]) if ready is None else ready
    commit(run_dir, state, ready, lambda: write_atomically(run_dir / STATE, lambda p: torch.save(state, p)))


def _load_state(run_dir: Path) -> dict[str, Any]:
    path = run_dir / STATE
    if not path.is_file():
        raise CheckpointError(f"{run_dir} holds no search to resume ({STATE} is missing)")
    try:
        state = torch.load(path, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user-facing error
        raise CheckpointError(f"{path} cannot be read as a growdsl search state: {e}") from None
    if isinstance(state, dict) and state.get("format") == 2:  # the log in the state: it moves out
        upgrade(state)
        state["format"] = STATE_FORMAT
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path} is not a growdsl search state of format 2 or {STATE_FORMAT}")
    return state


def _write_member(run_dir: Path, member: int, payload: Payload) -> None:
    folder = run_dir / MEMBERS / str(member)
    folder.mkdir(parents=True, exist_ok=True)
    write_history(folder, payload["history"])
