"""The controller's decisions over a cell, and the path-level edits they make
(docs/methods/pathlevel.md, "The meta-controller").

`sample_edits` walks the cell's tree depth-first (the base net's tree, as the encoder read it)
and asks the policy, at each node where a choice exists:

- at a weight op (a layer): `insert` (an identity node after it, `sites.insert_identity`), and
  if inserted, `replace` for that new identity edge; then `merge` (keep the layer, make it a
  `branch add` of copies, `sites.replicate_add`, or a `branch concat` of halves,
  `sites.split_concat`: the paper's add and concat merges, as function-preserving edits);
- at an `identity` op: `replace` (keep it, or `sites.replace_identity` by a conv or a sepconv).

Every edit is built by `sites.every_use` on the graph as the earlier decisions left it, so a
change to the cell is made to every use of it; a choice whose edit does not apply there is
masked out, and a node with a single allowed choice asks nothing. The edits are graph values:
`build_child` then carries the base net's weights across them with each edit's function-keeping
init (`growdsl.grow.pathlevel.inits`). `log_prob` recomputes the log-probability and entropy of
recorded decisions under a controller, for REINFORCE.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch

from growdsl.grow.net import Net
from growdsl.grow.pathlevel import sites
from growdsl.grow.pathlevel.inits import path_level_init, replaced_stats
from growdsl.grow.surgery import Carry, carry
from growdsl.ir.edits import Edit, apply_in_place, compose_renames, renamed_id
from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import WEIGHT_OPS
from growdsl.search.controller import ACTORS, CellTree, Controller, distribution


@dataclass(frozen=True)
class Decision:
    """One choice: which `actor`, reading the state of node `node` (an index into the tree) at
    base node `at`, among the `allowed` choices, and the one taken."""

    actor: str
    node: int
    at: str
    allowed: tuple[bool, ...]
    choice: int

    def to_json(self) -> dict[str, Any]:
        return {"actor": self.actor, "at": self.at, "choice": ACTORS[self.actor][self.choice]}


def cell_roots(graph: ArchGraph) -> list[str]:
    """The first use of each cell (a seq lowered from a `block`), in tree order: where the
    controller acts (sharing carries each change to the other uses)."""
    seen, roots = set(), []
    for node in graph.walk():
        block = graph[node].get("block")
        if block and block not in seen:
            seen.add(block)
            roots.append(node)
    return roots


def sample_edits(
    graph: ArchGraph, tree: CellTree, policy, states: torch.Tensor, generator: torch.Generator
) -> tuple[list[Edit], list[Decision]]:
    """The edits and decisions of one child of `graph` (see the module docstring); `policy`
    gives an actor's logits at a node from the encoder's `states`, choices are drawn from
    `generator`."""
    current = graph.copy()
    renames: dict[str, str] = {}
    edits: list[Edit] = []
    decisions: list[Decision] = []

    def decide(actor: str, i: int, options: list[Edit | None]) -> int:
        allowed = (True, *(e is not None for e in options[1:]))
        if sum(allowed) == 1:
            return 0
        with torch.no_grad():
            probs = distribution(policy.logits(states, actor, i), allowed).probs
        choice = int(torch.multinomial(probs, 1, generator=generator))
        decisions.append(Decision(actor, i, tree.nodes[i], allowed, choice))
        if choice:
            edit = options[choice]
            nonlocal renames
            renames = compose_renames(renames, apply_in_place(current, edit))
            edits.append(edit)
        return choice

    def replace(i: int, node: str) -> None:
        build = [functools.partial(sites.replace_identity, op=op, k=3) for op in ACTORS["replace"][1:]]
        decide("replace", i, [None, *(sites.every_use(current, node, b) for b in build)])

    for i, node in enumerate(tree.nodes):
        op = graph[node].get("op")
        if op in WEIGHT_OPS:
            before = set(current.walk())
            insert = sites.every_use(current, renamed_id(node, renames), sites.insert_identity)
            if decide("insert", i, [None, insert]):
                new = next(
                    n for n in current.walk() if n not in before and current[n].get("op") == "identity"
                )
                replace(i, new)
            here = renamed_id(node, renames)
            add = functools.partial(sites.replicate_add, copies=2)
            decide(
                "merge", i, [None, *(sites.every_use(current, here, b) for b in (add, sites.split_concat))]
            )
        elif op == "identity":
            replace(i, renamed_id(node, renames))
    return edits, decisions


def build_child(
    base: Net, edits: list[Edit], sample: torch.Tensor, noise: float, seed: int
) -> tuple[Net, list[Carry]]:
    """The base net after `edits`, its weights carried across each: replication noise
    (`noise`, seeded from `seed`) on the copies, replaced identities set to the identity from
    their input's statistics on `sample` (exact at zero noise in eval mode)."""
    net, carries = base, []
    for i, edit in enumerate(edits):
        init = path_level_init(noise, seed + i, replaced_stats(net, edit, sample))
        net, done = carry(net, edit, init, torch.Generator().manual_seed(seed + i))
        carries.append(done)
    return net, carries


def log_prob(
    controller: Controller, states: torch.Tensor, decisions: list[Decision]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The log-probability of `decisions` under `controller` (whose encoder gave `states`), and
    the sum of their entropies."""
    total, entropy = torch.zeros(()), torch.zeros(())
    for d in decisions:
        dist = distribution(controller.logits(states, d.actor, d.node), d.allowed)
        total = total + dist.log_prob(torch.tensor(d.choice))
        entropy = entropy + dist.entropy()
    return total, entropy
