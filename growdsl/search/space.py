"""A search space's open positions, and the graph functions a population search draws with.

A *position* is a place the spec leaves open: a `choice` node (which path), an op with a set of
values (`conv(16, k: {3, 5})`) or a width range (`linear(8..128)`), a growable `repeat lo..hi`
(how many copies). `sample_member` draws every position of an architecture (uniformly, or from a
stratified population's pools, `strata.py`); `mix` (PBT-NAS's crossover) takes each position of
parent 1 from parent 2 with probability `mix`; `mutate` (the mutation-PBT baseline) redraws one
position. Both return `Graft` edits (`growdsl.ir.edits`): a taken position replaces parent 1's
subtree at that node by the other architecture's, so lineage and replay work as for growth.
Positions are visited in tree order on the live tree (an unchosen path has no positions that
matter); a position inside one already taken comes with it. docs/methods/pbt_nas.md says why
and what it means for the weights.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from growdsl.ir.edits import AppendCopy, Graft, apply_edit, apply_in_place, subtree_json
from growdsl.ir.graph import ArchGraph
from growdsl.ir.sample import draw_node
from growdsl.search.strata import Pick, uniform

KINDS = ("choice", "set", "width", "depth")


@dataclass(frozen=True)
class Position:
    node: str
    kind: str  # one of KINDS


def position_of(graph: ArchGraph, node: str) -> Position | None:
    """The position at `node`, or None when nothing is open there."""
    attrs = graph[node]
    if attrs["kind"] == "choice":
        return Position(node, "choice")
    if attrs["kind"] == "seq" and attrs.get("depth") and attrs["depth"][0] < attrs["depth"][1]:
        return Position(node, "depth")
    if attrs["kind"] == "op" and attrs.get("options"):
        return Position(node, "set")
    if attrs["kind"] == "op" and attrs.get("width") and attrs["width"][0] < attrs["width"][1]:
        return Position(node, "width")
    return None


def positions(graph: ArchGraph) -> list[Position]:
    """Every open position on the live tree, in tree order."""
    return [p for n in graph.walk() if (p := position_of(graph, n)) is not None]


def sample_member(space: ArchGraph, rng: random.Random, pick: Pick | None = None) -> ArchGraph:
    """An architecture drawn at every position, uniformly from `rng` (or by `pick`, a stratified
    population's member, `strata.py`): each choice's path, each set's value, each width in its
    range, each repeat's number of copies in its range. Positions are drawn one at a time in tree
    order, so the positions a draw opens (on a chosen path, in an appended copy) are drawn too.
    The ranges stay, so the member can still grow."""
    member = space.copy()
    draw_all(member, member.root, pick or uniform(rng))
    return member


def draw_all(graph: ArchGraph, under: str, pick: Pick) -> None:
    """Draw, in place, every position at or under node `under`, one at a time in tree order."""
    drawn: set[str] = set()

    def open_here(pos: Position) -> bool:
        return pos.node not in drawn and (pos.node == under or pos.node.startswith(under + "."))

    while todo := [p for p in positions(graph) if open_here(p)]:
        drawn.add(todo[0].node)
        draw(graph, todo[0], pick)


def draw(graph: ArchGraph, pos: Position, pick: Pick) -> None:
    """Draw the value at `pos` in place by `pick` (the copies of a depth draw are appended from
    the repeat's template, or dropped from its end)."""
    attrs = graph[pos.node]
    if pos.kind in ("choice", "set"):
        draw_node(graph, pos.node, pick)
    elif pos.kind == "width":
        lo, hi = attrs["width"]
        attrs["args"] = {**attrs["args"], "out": lo + pick(pos.node, hi - lo + 1)}
    else:
        lo, hi = attrs["depth"]
        depth = lo + pick(pos.node, hi - lo + 1)
        for child in graph.children(pos.node)[depth:]:
            graph.g.remove_nodes_from(list(graph.walk(child, live_only=False)))
        for _ in range(depth - len(graph.children(pos.node))):
            apply_in_place(graph, AppendCopy(pos.node))


def mix(
    parent1: ArchGraph, parent2: ArchGraph, share: float, rng: random.Random
) -> tuple[list[Graft], list[str]]:
    """PBT-NAS's crossover: the grafts that give parent 1 parent 2's value at each position with
    probability `share`, and the positions taken. One draw per position of parent 1, in tree
    order; a position inside one already taken is skipped (it came with it); a taken position
    parent 2 lacks (or holds as another kind of node) needs no graft. A taken position whose
    value parent 2 shares is grafted too: as in the authors' code, every drawn position's layers
    are exchanged (and shrink-perturbed), equal value or not."""
    grafts, taken, inside = [], [], ()
    for pos in positions(parent1):
        if pos.node.startswith(inside):
            continue
        if rng.random() >= share:
            continue
        taken.append(pos.node)
        inside = (*inside, pos.node + ".")
        if pos.node in parent2 and parent2.kind(pos.node) == parent1.kind(pos.node):
            grafts.append(Graft(pos.node, subtree_json(parent2, pos.node)))
    return grafts, taken


def mutate(graph: ArchGraph, rng: random.Random, *, other: bool = False) -> tuple[Graft, str] | None:
    """The mutation baseline: one position, chosen uniformly, redrawn (a choice or set takes
    another value where it has one; with `other`, a width or a repeat's depth too, as SEARL's
    gene mutation does); the graft that makes it so and the node, or None when the architecture
    has no open position."""
    open_ = positions(graph)
    if not open_:
        return None
    pos = rng.choice(open_)
    redrawn = graph.copy()
    attrs = redrawn[pos.node]
    if pos.kind == "choice":  # another path, its own positions drawn afresh
        paths = redrawn.children(pos.node)
        options = [i for i in range(len(paths)) if i != (attrs.get("chosen") or 0)]
        if options:
            attrs["chosen"] = rng.choice(options)
            draw_all(redrawn, paths[attrs["chosen"]], uniform(rng))
    elif pos.kind == "set":
        args = dict(attrs["args"])
        name = rng.choice(sorted(attrs["options"]))
        others = [v for v in attrs["options"][name] if v != args[name]]
        args[name] = rng.choice(others) if others else args[name]
        attrs["args"] = args
    else:
        before = subtree_json(redrawn, pos.node)
        draw(redrawn, pos, uniform(rng))
        while other and subtree_json(redrawn, pos.node) == before:  # a range holds two values at least
            redrawn = graph.copy()
            draw(redrawn, pos, uniform(rng))
    return Graft(pos.node, subtree_json(redrawn, pos.node)), pos.node


def graft_all(graph: ArchGraph, grafts: list[Graft]) -> ArchGraph:
    """`graph` with every graft applied in order."""
    for graft in grafts:
        graph, _ = apply_edit(graph, graft)
    return graph
