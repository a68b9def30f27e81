"""A stratified initial population: every value of every gene as often as the population allows.

PBT-NAS's authors do not draw their first members independently (`search/algorithms/
common_utils.py`, `randomly_init_population_hparams`, in AwesomeLemon/PBT-NAS): for each gene
with K values they fill a pool of the population's size N with every value floor(N / K) times,
pad it to N, shuffle it (each gene's pool on its own), and give member i the i-th entry of every
pool. So a population of 16 over a gene of 3 values holds each value 5 or 6 times, never 2 and
9 as independent draws may, while any member is still uniform at every gene and the genes are
independent of each other.

Here a gene is what a draw picks (`Pick`): a choice's path, each set-valued argument of an op, a
width of a range, a repeat's depth (`growdsl/ir/sample.py`, `space.draw`), and an open train
setting with finitely many values (a set, an `int` grid; `growdsl/run/hparams.py`), each named by
a key. A pool is made the first time a member reaches its key, from the run's generator, so the
population is a function of the seed. One deviation: the pad is drawn without replacement (K > pad
distinct values), where the authors pad with independent draws, so the counts of a gene's values
differ by at most 1 (the authors' by up to the pad's size). docs/methods/pbt_nas.md, "The initial
population", says what a position only some members reach and a `where:` bound do to it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

Pick = Callable[[str, int], int]
"""`pick(key, count)`: the index, in `range(count)`, of the value drawn for the gene `key`."""


def uniform(rng: random.Random) -> Pick:
    """Independent uniform draws: `rng.randrange(count)`, the draw `rng.choice` and `rng.randint`
    make, so a search drawing through it draws what it drew before picks existed."""
    return lambda _key, count: rng.randrange(count)


def balanced(count: int, size: int, rng: random.Random) -> list[int]:
    """A shuffled pool of `size` indices into `count` values: each `size // count` times, the rest
    distinct values drawn without replacement (see the module docstring)."""
    pool = list(range(count)) * (size // count) if count <= size else []  # a wide range: no list of it
    pool += rng.sample(range(count), size - len(pool))
    rng.shuffle(pool)
    return pool


class Strata:
    """The pools of a population of `size` members (see the module docstring); `member(i)` is
    the `Pick` of member i. A pool is made from `rng` when a member first reaches its gene."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size, self.rng = size, rng
        self.pools: dict[tuple[str, int], list[int]] = {}

    def member(self, index: int) -> Pick:
        def pick(key: str, count: int) -> int:
            if (key, count) not in self.pools:
                self.pools[key, count] = balanced(count, self.size, self.rng)
            return self.pools[key, count][index]

        return pick
