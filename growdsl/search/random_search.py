"""Random search, `random(trials: N)` (docs/search.md): trials drawn one at a time, when a worker
is free to train them, and only the leader's weights kept.

A random search is the population method (`population.py`) with no exploit step: N members, each
trained its whole budget in one leg (an epoch a round with `stop:`, so the rule decides between
epochs). Its trials are independent, so none needs to exist before its job is handed out:

- drawn lazily: `jobs` draws the next trial (`hyper.Space.draw`, its architecture and open
  settings, then its weights' seed) when the backend asks for a job. The draws come from one
  generator, seeded by the train block's seed, in trial order, so they are exactly the trials an
  up-front draw makes; the state records the trials drawn so far (`members`) with the generator
  as it was after the last of them (`rng`), so a resumed search trains the drawn trials it had not
  finished, then draws on from where it stopped, and writes the uninterrupted search's log;
- only the leader kept: a trained trial's payload stays in the state only while it is the fittest
  so far (`leader`; ties go to the smaller id, as `pbt.rank` orders), which at the end is the
  winner. The state holds the leader and the trials in training, whatever N is (a trial that
  does not lead is forgotten: its payload, fitness and settings), so memory and the state file
  stay flat in the number of trials (tested with 10,000), and the bytes written per trial too
  (the log is appended to: `searchlog.py`). With `stop:` every trial trains round after round, so
  each keeps its payload until the end.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from growdsl.search.pbt import rank
from growdsl.search.population import Population, add_member, forget, new_population
from growdsl.search.protocol import Finished, Job, Setup
from growdsl.search.registry import register_search


class RandomSearch(Population):
    """`random(trials: N)` (see the module docstring): `every` epochs a round, `stop` the early
    stopping rule or None."""

    def start(self, state: dict[str, Any]) -> None:
        self.rng.seed(self.config.seed)
        new_population(state)  # no trial drawn yet: each is drawn when its job is handed out
        state["leader"] = None
        state["rng"] = self.rng.getstate()

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        state.setdefault("leader", None)  # a state saved when every trial's payload was kept

    def width(self, state: dict[str, Any]) -> int:
        drawn = sum(self.next_leg(state, member) is not None for member in state["members"])
        return drawn + self.size - state["next_id"]

    def jobs(self, state: dict[str, Any]) -> Iterator[Job]:
        """The drawn trials' next jobs (a resumed round's; with `stop:`, every round after the
        first), then a job for each trial not drawn yet, drawn as it is asked for."""
        yield from super().jobs(state)
        while state["next_id"] < self.size:
            member = add_member(self.setup, state, self.setup.members.draw(self.rng), self.rng)
            state["rng"] = self.rng.getstate()  # saved with the trial it drew, never ahead of it
            job = self.next_leg(state, member)
            if job is not None:
                yield job

    def record(self, state: dict[str, Any], done: Finished) -> dict[str, Any]:
        fields = super().record(state, done)
        if self.stop is None:  # a trial trains once: its weights matter only while it leads
            self._keep_the_leader(state, done.job.member)
        return fields

    def _keep_the_leader(self, state: dict[str, Any], member: int) -> None:
        """`member` has trained: it becomes the leader if it is fitter than the leader (whose
        payload then goes), else its own payload goes (a crashed or diverged trial never leads)."""
        leader, fitness = state["leader"], state["fitness"]
        if math.isfinite(fitness[member]) and (
            leader is None or rank({leader: fitness[leader], member: fitness[member]})[0] == member
        ):
            state["leader"], member = member, leader
        if member is not None:
            forget(state, member)


def random_search(setup: Setup) -> RandomSearch:
    """`random(trials: N)`: N trials trained their whole budget in one leg (each its own number of
    epochs when `epochs` is drawn), or an epoch a round under an early stopping rule."""
    opts = setup.search.options
    longest = max(setup.members.config(corner).epochs for corner in setup.members.corner_values())
    if opts["stop"] is not None:  # an epoch a round, so the rule decides between epochs
        return RandomSearch(setup, opts["trials"], 1, None, opts["stop"])
    return RandomSearch(setup, opts["trials"], longest, None)


register_search("random", random_search)
