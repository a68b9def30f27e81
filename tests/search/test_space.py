"""The search space's positions, uniform draws, PBT-NAS mixing and the mutation baseline."""

from __future__ import annotations

import math
import random
from collections import Counter

from growdsl.ir import lower
from growdsl.ir.edits import subtree_json
from growdsl.lang import parse_text
from growdsl.search.space import graft_all, mix, mutate, positions, sample_member

SPACE = """\
model m {
    flatten
    linear(4..12) as a tanh
    choice { linear(8) relu | linear({6, 10}) tanh }
    repeat 1..3 { linear(4..8) relu }
    linear(classes)
}
"""


def _space():
    return lower(parse_text(SPACE, "space.grow"), (1, 8, 8), 10)


def test_positions_are_the_open_places_on_the_live_tree_in_tree_order():
    space = _space()
    assert [(p.node, p.kind) for p in positions(space)] == [
        ("m.a", "width"),
        ("m.3", "choice"),
        ("m.4", "depth"),
        ("m.4.0.0", "width"),
    ]


def test_members_are_drawn_uniformly_at_every_position():
    space = _space()
    rng = random.Random(0)
    members = [sample_member(space, rng) for _ in range(600)]
    widths = Counter(m["m.a"]["args"]["out"] for m in members)
    assert set(widths) == set(range(4, 13)) and max(widths.values()) < 2 * min(widths.values())
    depths = Counter(len(m.children("m.4")) for m in members)
    assert set(depths) == {1, 2, 3}
    chosen = Counter(m["m.3"]["chosen"] for m in members)
    assert abs(chosen[0] - 300) < 60
    # positions a draw opens are drawn too: the set on the second path, every appended copy's width
    second = [m for m in members if m["m.3"]["chosen"] == 1]
    assert {m["m.3.1.0"]["args"]["out"] for m in second} == {6, 10}
    deep = [m for m in members if len(m.children("m.4")) == 3]
    assert len({m["m.4.2.0"]["args"]["out"] for m in deep}) > 1
    assert all(m.is_tree() for m in members)


def test_a_mixed_child_is_parent_one_except_at_the_positions_taken():
    space = _space()
    rng = random.Random(1)
    for _ in range(50):
        one, two = sample_member(space, rng), sample_member(space, rng)
        grafts, taken = mix(one, two, 0.5, rng)
        child = graft_all(one, grafts)
        for pos in positions(one):
            inside = any(pos.node == t or pos.node.startswith(t + ".") for t in taken)
            holds = any(t.startswith(pos.node + ".") for t in taken)
            if inside and pos.node in two:  # taken (or came with a position taken around it)
                assert subtree_json(child, pos.node) == subtree_json(two, pos.node), pos
            elif not inside and not holds:  # nothing taken at or under it
                assert subtree_json(child, pos.node) == subtree_json(one, pos.node), pos


def test_the_share_of_positions_taken_is_mix():
    space = _space()
    rng = random.Random(2)
    drawn = taken_count = 0
    for _ in range(400):
        one, two = sample_member(space, rng), sample_member(space, rng)
        top = [p for p in positions(one) if p.node in ("m.a", "m.3", "m.4")]  # never inside another
        _, taken = mix(one, two, 0.25, rng)
        drawn += len(top)
        taken_count += sum(t in {p.node for p in top} for t in taken)
    share = taken_count / drawn
    assert abs(share - 0.25) < 4 * math.sqrt(0.25 * 0.75 / drawn), share


def test_mutation_redraws_exactly_one_position():
    space = _space()
    rng = random.Random(3)
    for _ in range(50):
        member = sample_member(space, rng)
        graft, node = mutate(member, rng)
        child = graft_all(member, [graft])
        changed = [p.node for p in positions(member) if p.node in child and p.node in (node,)]
        assert changed == [node] and graft.node == node
        untouched = [c for c in member.children("m") if not (c == node or node.startswith(c + "."))]
        assert all(subtree_json(child, c) == subtree_json(member, c) for c in untouched)


def test_a_mutation_to_another_value_changes_a_width_or_depth_position():
    spec = parse_text("data spirals(n: 100)\nmodel m { linear(8..9) tanh linear(classes) }\n", "w.grow")
    graph = lower(spec, (2,), 2)
    for seed in range(10):
        graft, node = mutate(graph, random.Random(seed), other=True)
        assert graft.donor != subtree_json(graph, node)


def test_a_position_taken_from_a_parent_with_the_same_value_is_still_grafted():
    space = _space()
    one = sample_member(space, random.Random(3))
    grafts, taken = mix(one, one, 1.0, random.Random(0))  # mixing with itself: the authors' ablation
    assert taken and [g.node for g in grafts] == taken  # every drawn position exchanges its layers
