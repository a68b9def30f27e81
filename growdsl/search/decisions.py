"""The controller's decisions over a cell, and the path-level edits they make
(docs/methods/pathlevel.md, "The meta-controller").

`sample_edits` walks the base cell's nodes depth-first and asks the policy, at each node where a
choice exists (reading the encoder's states of the cell *as the earlier decisions left it*: the
encoder is re-run on the current tree before every decision, as the authors' `sample_cell` in
arch_search_tree_cell.py does):

- at a weight op (a layer): `insert` (an identity node after it and after the ReLU that follows
  it, `sites.insert_identity`), and if inserted, the new node grown to the authors' depth 3
  (`grow`: its merge, a `replace` of each of its paths, an `insert` after each path below
  MAX_DEPTH, recursively); then
  `merge` (keep the layer, make it a `branch add` of copies, `sites.replicate_add`, or a
  `branch concat` of halves, `sites.split_concat`: the paper's add and concat merges, as
  function-preserving edits);
- at an `identity` op: `replace` (keep it, or one of the authors' other 6 edge candidates,
  `replacement`: 3x3, 5x5, 7x7 sepconv and 1x1 conv as conv-BN-ReLU layers, 3x3 max and average
  pools).

Every edit is built by `sites.every_use` on the graph as the earlier decisions left it, so a
change to the cell is made to every use of it; a choice whose edit does not apply there, or
whose graph a `fits` test refuses (a `where:` ceiling, `pathlevel.py`), is masked out, and a node
with a single allowed choice asks nothing. The edits are graph values:
`build_child` then carries the base net's weights across them with each edit's function-keeping
init (`growdsl.grow.pathlevel.inits`). `log_prob` recomputes the log-probability and entropy of
recorded decisions under a controller (each on the tree it was taken on), for REINFORCE.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from growdsl.grow.deepen import nonneg_input
from growdsl.grow.net import Net
from growdsl.grow.pathlevel import sites
from growdsl.grow.pathlevel.inits import path_level_init, replaced_stats
from growdsl.grow.surgery import Carry, carry
from growdsl.ir.edits import Edit, apply_edit, apply_in_place, compose_renames, renamed_id
from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import WEIGHT_OPS
from growdsl.search.controller import ACTORS, CellTree, Controller, distribution

MAX_DEPTH = 3  # the authors' `max_depth` of a tree cell (sample_cell, arch_search_tree_cell.py)


@dataclass(frozen=True)
class Decision:
    """One choice: which `actor`, reading the state of node `node` (an index into `tree`, the
    cell as the earlier decisions left it) at base node `at`, among the `allowed` choices, and
    the one taken."""

    actor: str
    node: int
    at: str
    allowed: tuple[bool, ...]
    choice: int
    tree: CellTree

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
    graph: ArchGraph,
    policy,
    generator: torch.Generator,
    fits: Callable[[ArchGraph], bool] | None = None,
) -> tuple[list[Edit], list[Decision]]:
    """The edits and decisions of one child of `graph` (see the module docstring); `policy`
    encodes a tree (`policy.encode`) and gives an actor's logits at a node from those states,
    choices are drawn from `generator`. With `fits`, a choice whose edit makes a graph that
    `fits` refuses is masked out (keeping a node as it is is always allowed)."""
    tree = CellTree.of(graph, cell_roots(graph))
    current = graph.copy()
    renames: dict[str, str] = {}
    steps: list[dict[str, str]] = []  # each applied edit's renames, to follow a node made on the way
    edits: list[Edit] = []
    decisions: list[Decision] = []
    encoded: dict[CellTree, torch.Tensor] = {}

    def follow(node: str, since: int) -> str:
        for step in steps[since:]:
            node = renamed_id(node, step)
        return node

    def applies(edit: Edit | None) -> bool:
        return edit is not None and (fits is None or fits(apply_edit(current, edit)[0]))

    def decide(actor: str, i: int, options: list[Edit | None], focus: str) -> int:
        allowed = (True, *(applies(e) for e in options[1:]))
        if sum(allowed) == 1:
            return 0
        now = CellTree.of(current, cell_roots(current))  # the cell as the earlier decisions left it
        if now not in encoded:
            with torch.no_grad():
                encoded[now] = policy.encode(now)
        at = now.nodes.index(focus)
        with torch.no_grad():
            probs = distribution(policy.logits(encoded[now], actor, at), allowed).probs
        choice = int(torch.multinomial(probs, 1, generator=generator))
        decisions.append(Decision(actor, at, tree.nodes[i], allowed, choice, now))
        if choice:
            edit = options[choice]
            nonlocal renames
            steps.append(apply_in_place(current, edit))
            renames = compose_renames(renames, steps[-1])
            edits.append(edit)
        return choice

    def replace(i: int, node: str) -> None:
        build = [functools.partial(replacement, choice=c) for c in ACTORS["replace"][1:]]
        decide("replace", i, [None, *(sites.every_use(current, node, b) for b in build)], node)

    add = functools.partial(sites.replicate_add, copies=2)
    after = functools.partial(sites.insert_identity, after_activation=True)

    def new_identities(before: set[str]) -> list[str]:
        """The identity ops of the first use of the cell that were not in `before`."""
        first = CellTree.of(current, cell_roots(current)).nodes
        return [n for n in first if n not in before and current[n].get("op") == "identity"]

    def insert(i: int, edge: str, depth: int) -> None:
        """The insert decision after `edge`'s layer; if taken, the new node grown at `depth`."""
        before = set(current.walk())
        if decide("insert", i, [None, sites.every_use(current, edge, after)], edge):
            grow(i, new_identities(before)[0], depth, len(steps))

    def grow(i: int, node: str, depth: int, mark: int) -> None:
        """An inserted identity `node` (a node of the authors' tree at `depth`): its merge, the
        replacement of each of its paths, and below MAX_DEPTH an insert after each path."""
        node = follow(node, mark)
        before, mark = set(current.walk()), len(steps)
        decide(
            "merge", i, [None, *(sites.every_use(current, node, b) for b in (add, sites.split_concat))], node
        )
        paths = list(dict.fromkeys([follow(node, mark), *new_identities(before)]))  # path 0 is new too
        marks = len(steps)
        for path in paths:
            replace(i, follow(path, marks))
        if depth >= MAX_DEPTH:
            return
        for path in paths:
            here = follow(path, marks)
            ops = [
                n
                for n in current.walk(here)
                if current[n].get("op") in (*WEIGHT_OPS, "identity", "maxpool", "avgpool")
            ]
            insert(i, ops[0] if ops else here, depth + 1)

    for i, node in enumerate(tree.nodes):
        op = graph[node].get("op")
        if op in WEIGHT_OPS:
            insert(i, renamed_id(node, renames), 2)
            here = renamed_id(node, renames)
            merges = [sites.every_use(current, here, b) for b in (add, sites.split_concat)]
            decide("merge", i, [None, *merges], here)
        elif op == "identity":
            replace(i, renamed_id(node, renames))
    return edits, decisions


def replacement(graph: ArchGraph, node: str, choice: str) -> Edit | None:
    """The edit that makes identity `node` the replace actor's `choice` (`"5x5_sepconv"`): a conv
    or sepconv as a conv-BN-ReLU layer, only where the identity's input is non-negative (after a
    ReLU), so that the ReLU passes it and the init can make the layer the identity; a 3x3 pool at
    stride 1 anywhere (not the identity: see docs/methods/pathlevel.md). None where it does not
    apply."""
    size, op = choice.split("_")
    k = int(size.split("x")[0])
    if op in ("conv", "sepconv"):
        if not nonneg_input(graph, node):
            return None
        return sites.replace_identity(graph, node, op, k, relu=True)
    return sites.replace_identity(graph, node, op, k)


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
    controller: Controller, decisions: list[Decision], encoded: dict[CellTree, torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The log-probability of `decisions` under `controller` (each read from the encoding of the
    tree it was taken on, encoded once per distinct tree; `encoded` shares the encodings between
    calls, e.g. the children of one batch), and the sum of their entropies."""
    total, entropy = torch.zeros(()), torch.zeros(())
    encoded = {} if encoded is None else encoded
    for d in decisions:
        if d.tree not in encoded:
            encoded[d.tree] = controller.encode(d.tree)
        dist = distribution(controller.logits(encoded[d.tree], d.actor, d.node), d.allowed)
        total = total + dist.log_prob(torch.tensor(d.choice))
        entropy = entropy + dist.entropy()
    return total, entropy
