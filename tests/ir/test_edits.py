"""The edit vocabulary: what each edit does to the tree, its renames, room, and its JSON form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from growdsl.ir import flops, infer_shapes, param_count
from growdsl.ir.edits import (
    AppendCopy,
    EditError,
    Graft,
    Group,
    Insert,
    Several,
    Widen,
    Wrap,
    apply_edit,
    edit_from_json,
    edit_to_json,
    fold,
    rename_edit,
    room,
    subtree_json,
)
from growdsl.ir.graph import to_json

MLP = "model m { flatten linear(4..8) as h tanh repeat 1..3 { linear(6) relu } linear(classes) }"


def test_widen_adds_neurons_within_the_range_and_leaves_the_input_untouched(lower_text):
    graph = lower_text(MLP)
    grown, renames = apply_edit(graph, Widen("m.h", (0, None, 2)))
    assert renames == {} and grown["m.h"]["args"]["out"] == 7 and graph["m.h"]["args"]["out"] == 4
    assert room(graph, Widen("m.h", (None,) * 4)) and not room(graph, Widen("m.h", (None,) * 5))
    with pytest.raises(EditError, match="cannot copy neuron 4"):
        apply_edit(graph, Widen("m.h", (4,)))
    with pytest.raises(EditError, match="not a weight op"):
        apply_edit(graph, Widen("m.2", (None,)))


def test_append_copy_adds_a_copy_up_to_the_depth_range(lower_text):
    graph = lower_text(MLP)
    once, _ = apply_edit(graph, AppendCopy("m.3"))
    assert once.children("m.3") == ["m.3.0", "m.3.1"] and room(once, AppendCopy("m.3"))
    full = fold(graph, [AppendCopy("m.3"), AppendCopy("m.3")])
    assert not room(full, AppendCopy("m.3")) and full.is_tree()


def test_wrap_mean_moves_the_node_under_a_branch_that_takes_its_id_and_label(lower_text):
    graph = lower_text("model m { flatten linear(8) as h bn tanh linear(classes) }")
    wrapped, renames = apply_edit(graph, Wrap("m.h", "mean", 3))
    assert renames == {"m.h": "m.h.0"}
    assert wrapped.kind("m.h") == "branch" and wrapped["m.h"]["merge"] == "mean"
    assert wrapped["m.h"]["label"] == "h" and wrapped.by_label("h") == ["m.h"]
    assert wrapped.children("m.h") == ["m.h.0", "m.h.1", "m.h.2"]
    assert all(wrapped[p]["args"] == {"out": 8, "bias": True} for p in wrapped.children("m.h"))
    assert param_count(wrapped) == param_count(graph) + 2 * (8 * 64 + 8)
    assert wrapped.is_tree() and infer_shapes(wrapped)["m.h"].out == (8,)


def test_wrap_renames_a_whole_subtree(lower_text):
    graph = lower_text(MLP)
    wrapped, renames = apply_edit(graph, Wrap("m.3", "add"))
    assert renames == {"m.3": "m.3.0", "m.3.0": "m.3.0.0", "m.3.0.0": "m.3.0.0.0", "m.3.0.1": "m.3.0.0.1"}
    assert wrapped["m.3.0"]["depth"] == (1, 3) and wrapped.children("m.3.1.0") == ["m.3.1.0.0", "m.3.1.0.1"]
    # an edit aimed at the old id follows it
    assert rename_edit(AppendCopy("m.3"), renames) == AppendCopy("m.3.0")
    again, _ = apply_edit(wrapped, rename_edit(AppendCopy("m.3"), renames))
    assert again.children("m.3.0") == ["m.3.0.0", "m.3.0.1"]


def test_wrap_concat_shares_out_the_neurons_and_keeps_the_width(lower_text):
    graph = lower_text("model m { flatten linear(4..9) as h tanh linear(classes) }")
    wrapped, _ = apply_edit(graph, Wrap("m.h", "concat", 2))
    assert [wrapped[p]["args"]["out"] for p in wrapped.children("m.h")] == [2, 2]
    assert "width" not in wrapped["m.h.0"] and infer_shapes(wrapped)["m.h"].out == (4,)
    assert param_count(wrapped) == param_count(graph)
    with pytest.raises(EditError, match="must be a weight op"):
        apply_edit(graph, Wrap("m.2", "concat"))
    with pytest.raises(EditError, match="root"):
        apply_edit(graph, Wrap("m", "mean"))


def test_wrap_concat_of_a_grouped_conv_gives_each_path_a_slice_and_half_the_groups(lower_text):
    graph = lower_text("model m { conv(8) conv(12, groups: 4) as g bn relu gap flatten linear(classes) }")
    wrapped, renames = apply_edit(graph, Wrap("m.g", "concat", 2))
    assert renames == {"m.g": "m.g.0.1"}
    for k, (start, end) in enumerate([(0, 4), (4, 8)]):
        assert wrapped.children(f"m.g.{k}") == [f"m.g.{k}.0", f"m.g.{k}.1"]
        assert wrapped[f"m.g.{k}.0"]["op"] == "slice"
        assert wrapped[f"m.g.{k}.0"]["args"] == {"start": start, "end": end}
        assert wrapped[f"m.g.{k}.1"]["args"] == {**graph["m.g"]["args"], "out": 6, "groups": 2}
    assert wrapped["m.g.0.1"]["label"] is None and wrapped["m.g"]["label"] == "g"
    assert infer_shapes(wrapped)["m.g"].out == (12, 8, 8)
    assert (param_count(wrapped), flops(wrapped)) == (param_count(graph), flops(graph))


@pytest.mark.parametrize(("op", "channels"), [("identity", 5), ("maxpool", 5), ("avgpool(3, stride: 1)", 4)])
def test_wrap_concat_of_an_identity_or_a_pool_slices_its_input_first_paths_larger(lower_text, op, channels):
    graph = lower_text(f"model m {{ conv({channels}) {op} as x gap flatten linear(classes) }}")
    wrapped, _ = apply_edit(graph, Wrap("m.x", "concat", 2))
    half = (channels + 1) // 2
    assert [wrapped[f"m.x.{k}.0"]["args"] for k in (0, 1)] == [
        {"start": 0, "end": half},
        {"start": half, "end": channels},
    ]
    assert infer_shapes(wrapped)["m.x"].out == infer_shapes(graph)["m.x"].out


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("conv(6) conv(6, groups: 3) as x", "m.x is a conv of 3 groups, which 2 paths cannot share"),
        ("conv(1) identity as x", "m.x reads 1 channels, fewer than 2 paths"),
        ("conv(4) relu as x", "must be a weight op, an identity or a pool"),
    ],
)
def test_wrap_concat_refuses_what_it_cannot_split_and_says_why(lower_text, model, message):
    graph = lower_text(f"model m {{ {model} gap flatten linear(classes) }}")
    with pytest.raises(EditError, match=message):
        apply_edit(graph, Wrap("m.x", "concat", 2))


def test_insert_puts_a_fresh_op_at_a_position(lower_text):
    graph = lower_text("model m { flatten linear(8) as h tanh linear(classes) }")
    grown, _ = apply_edit(graph, Insert("m", 2, "linear", (("out", 8),)))
    assert grown.children("m") == ["m.0", "m.h", "m.4", "m.2", "m.3"]
    assert grown["m.4"]["args"] == {"out": 8, "bias": True} and grown.is_tree()
    assert param_count(grown) == param_count(graph) + 8 * 8 + 8
    branch = lower_text("model m { flatten branch add { linear(4) | identity } linear(classes) }")
    paths, _ = apply_edit(branch, Insert("m.1", 2, "identity"))
    assert paths.children("m.1") == ["m.1.0", "m.1.1", "m.1.2"]
    with pytest.raises(EditError, match="takes no argument"):
        apply_edit(graph, Insert("m", 0, "relu", (("out", 3),)))
    with pytest.raises(EditError, match="no position 9"):
        apply_edit(graph, Insert("m", 9, "relu"))


def test_graft_replaces_a_subtree_by_a_donors(lower_text):
    ours = lower_text("model m { flatten repeat 2 { linear(8) tanh } linear(classes) }")
    theirs = lower_text("model m { flatten repeat 2 { linear(16) relu } linear(classes) }")
    grafted, renames = apply_edit(ours, Graft("m.1", subtree_json(theirs, "m.1")))
    assert renames == {}
    assert grafted["m.1.0.0"]["args"]["out"] == 16 and grafted["m.1.1.1"]["op"] == "relu"
    assert param_count(grafted) == param_count(theirs)


def test_every_edit_leaves_its_input_and_the_graphs_before_it_as_they_were(lower_text):
    # apply_edit copies the attribute dicts but shares their values (args, templates, spans):
    # an edit that wrote into one of them in place would change these snapshots
    graph = lower_text(
        "model m { flatten linear(4..8) as h bn tanh repeat 1..4 { linear(6) relu } "
        "branch add { linear(6) | identity } linear(classes) }"
    )
    donor = subtree_json(lower_text("model m { flatten repeat 2 { linear(16) relu } }"), "m.1")
    edits = [
        Widen("m.h", (0, None)),
        AppendCopy("m.4"),
        Insert("m.5", 2, "identity"),
        Wrap("m.h", "concat", 2),
        Wrap("m.4", "add"),
        Group("m.2", 2),
        Several((AppendCopy("m.4.0"), Widen("m.h.1", (None,)))),
        Graft("m.6", donor),
    ]
    graphs = [graph]
    for edit in edits:
        graphs.append(apply_edit(graphs[-1], edit)[0])
        after = graphs[-1]
        assert all(after[n] is not before[n] for before in graphs[:-1] for n in before.g if n in after)
    snapshots = [to_json(g) for g in graphs]
    for i, edit in enumerate(edits):  # each again, on a graph an earlier edit made
        apply_edit(graphs[i], edit)
        assert [to_json(g) for g in graphs] == snapshots


def test_missing_targets_are_edit_errors(lower_text):
    graph = lower_text(MLP)
    with pytest.raises(EditError, match="no node 'm.nope'"):
        apply_edit(graph, Widen("m.nope", (None,)))
    with pytest.raises(EditError, match="not a growable repeat"):
        apply_edit(graph, AppendCopy("m"))


_ids = st.sampled_from(["m.h", "m.3.0", "net.1.2"])
EDITS = st.one_of(
    st.builds(Widen, _ids, st.lists(st.one_of(st.none(), st.integers(0, 99)), min_size=1).map(tuple)),
    st.builds(AppendCopy, _ids),
    st.builds(Wrap, _ids, st.sampled_from(["add", "mean", "concat"]), st.integers(2, 3)),
    st.builds(
        Insert,
        _ids,
        st.integers(0, 5),
        st.sampled_from(["relu", "linear", "identity"]),
        st.dictionaries(st.sampled_from(["out", "k"]), st.integers(1, 9)).map(lambda d: tuple(d.items())),
    ),
)


@given(EDITS)
def test_every_edit_survives_its_json_form(edit):
    import json

    assert edit_from_json(json.loads(json.dumps(edit_to_json(edit)))) == edit


def test_a_graft_survives_its_json_form(lower_text):
    import json

    graph = lower_text(MLP)
    edit = Graft("m.3", subtree_json(graph, "m.3"))
    assert edit_from_json(json.loads(json.dumps(edit_to_json(edit)))) == edit


@pytest.mark.parametrize("data", [{"kind": "grow"}, {"kind": "widen"}, {"kind": "wrap", "node": "a", "x": 1}])
def test_malformed_json_is_an_edit_error(data):
    with pytest.raises(EditError):
        edit_from_json(data)
