"""What a search method is to the one search loop (`driver.py`): the `Search` protocol, the values
it exchanges with the loop, and the log fields every method shares. docs/search.md, "Writing a
search method", is the guide.

A method only decides: which members to train next and from what (`jobs`), what a finished job
means to it (`record`), what to do when a round is over (`after`: exploit, learn, stop members),
and which member won (`best`). The loop owns everything else, the same for every method: the run
folder and its lock, the state saved after every round and resumed from, the backend the jobs
train on, the progress table, the log lines of every evaluation and crash, the members'
histories, and the finish (the winner tested once, its files, its report).

Everything a method keeps between rounds lives in the search's state (a dict of tensors and
plain values, saved with `torch.save` and loaded with `weights_only=True`): a method may hold
live objects (a generator, a controller) between the calls of one process, made by `restore` from
the state and written back to it in `after`, so a resumed search goes on exactly as an
uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from growdsl import ir

if TYPE_CHECKING:
    from growdsl.ir.graph import ArchGraph
    from growdsl.lang.ast import Spec
    from growdsl.run.config import TrainConfig
    from growdsl.run.datasets import Splits
    from growdsl.run.member import Payload
    from growdsl.search.backends import MemberResult
    from growdsl.search.hyper import Space
    from growdsl.search.methods import SearchConfig


@dataclass(frozen=True)
class Setup:
    """What a method is made from: the spec (as run), its validated search declaration, its
    training settings (a member's open settings at their first end: `members.base()`), the lowered
    model (the search space), the data splits, the spec's text (what a member's payload records as
    its spec), and the space of members: the model with the open train settings and the `where`
    bounds (`hyper.Space`, through which a method draws and configures members)."""

    spec: Spec
    search: SearchConfig
    config: TrainConfig
    space: ArchGraph
    data: Splits
    text: str
    members: Space


@dataclass(frozen=True)
class Job:
    """Train member `member` from `payload` for `epochs` epochs, with `config` (the member's
    settings; None: the method's `config`). `note` is the method's own (the decisions that made a
    child, say): the loop hands it back with the job's result and never sends it to a worker."""

    member: int
    payload: Payload
    epochs: int
    note: Any = None
    config: TrainConfig | None = None


@dataclass(frozen=True)
class Finished:
    """A job and what came of it: the result (payload None after a crash or divergence, with its
    error) and the member's fitness on the validation split (-inf when it has none)."""

    job: Job
    result: MemberResult
    fitness: float


@dataclass(frozen=True)
class Best:
    """The winner of a search: a member, its payload, its validation fitness, and the settings
    and spec it trained with when they are its own (drawn hyperparameters; None: the method's)."""

    member: int
    payload: Payload
    fitness: float
    config: TrainConfig | None = None
    spec: Spec | None = None


class Search(Protocol):
    """A search method, as the loop drives it (see the module docstring). Made by the factory its
    module registers (`registry.register_search`) from a `Setup`."""

    round_name: str  # the log's name of a round ("leg", "episode") and of its count
    files: tuple[str, ...]  # the files `finish` writes into the run folder
    config: TrainConfig  # the settings every job trains under, and the winner is loaded with
    # optional `saves_each_job = True`: the round's jobs are independent, so the loop records, logs
    # and saves each as it finishes (a kill loses no finished job) instead of once a round; `jobs`
    # then yields them in member order (a finished member's line waits for the lower members')

    def start(self, state: dict[str, Any]) -> None:
        """Put a new search's first members (and anything else the method keeps) into `state`,
        which holds the loop's keys: `leg` (rounds done, 0), `next_id` (see `new_member`), `log`
        (the lines not in `search.jsonl` yet: a method appends its own there, and reads the file,
        `searchlog.read_log`, for the lines before)."""

    def restore(self, state: dict[str, Any]) -> None:
        """Make the live objects the method keeps between calls from `state`: called once per
        process, after `start` or on resume, before the first round."""

    def rounds(self) -> int:
        """How many rounds the search has."""

    def width(self, state: dict[str, Any]) -> int:
        """The most jobs one round runs (the backend starts no more workers than this)."""

    def jobs(self, state: dict[str, Any]) -> Iterable[Job]:
        """This round's jobs, drawn lazily: a job is made when the backend asks for it."""

    def record(self, state: dict[str, Any], done: Finished) -> dict[str, Any]:
        """Take in a finished job (keep its payload, its score); return the method's fields of
        its log line (an `evaluate` line, or a `crash` line when `done.result.payload` is None)."""

    def after(self, state: dict[str, Any], done: list[Finished]) -> dict[str, Any]:
        """The round is over (`state["leg"]` counts it; `done` in member order): exploit, learn,
        append the method's own log lines, write the live objects back into `state`. Returns the
        method's fields of the round's log line."""

    def best(self, state: dict[str, Any]) -> Best | None:
        """The winner, or None when every member crashed or diverged."""

    def finish(self, state: dict[str, Any], run_dir: Any, best: Best) -> dict[str, Any]:
        """Write the method's own files into the finished run's folder; return the pictures for the
        report (`{caption: png path}`)."""


def new_member(state: dict[str, Any]) -> int:
    """A fresh member id (ids count up from 0 over the whole search, never reused)."""
    member = state["next_id"]
    state["next_id"] += 1
    return member


def summary(payload: Payload) -> str:
    """A short description of a member's architecture: its weight ops' widths and kernels."""
    graph = ir.from_json(payload["graph"])
    parts = []
    for node in graph.ops():
        attrs = graph[node]
        if attrs["op"] in ("linear", "conv", "sepconv"):
            k = f"k{attrs['args']['k']}" if "k" in attrs["args"] else ""
            parts.append(f"{attrs['op']}{attrs['args']['out']}{k}")
    return " ".join(parts)


def scores(result: MemberResult, fitness: float) -> dict[str, Any]:
    """What the log says of a trained member: its validation fitness (None when not finite), size,
    training time and architecture, and the device a placement gave it (docs/search.md)."""
    graph = ir.from_json(result.payload["graph"])
    return {
        "fitness": fitness if math.isfinite(fitness) else None,
        "params": ir.param_count(graph),
        "flops": ir.flops(graph),
        "time": round(result.seconds, 3),
        "arch": summary(result.payload),
        **({"device": result.device} if result.device else {}),  # where a placement put it
    }
