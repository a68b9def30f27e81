"""Data-flow queries: producers and consumers through transparent ops, flatten and merges."""

from __future__ import annotations

from growdsl.ir import Consumer, DataFlow, consumers, is_transparent, next_op, prev_op, producers, reach

MLP = "model mlp { flatten linear(8) as h1 relu dropout linear(8) as h2 bn relu linear(classes) as out }"
CNN = "model net { conv(4) as c1 bn relu maxpool conv(6) as c2 relu flatten linear(classes) as fc }"
RESIDUAL = (
    "model res { conv(4) as stem branch add { conv(4) as a bn relu | identity } "
    "relu gap flatten linear(2) as fc }"
)
CONCAT = (
    "model cat { conv(4) as stem branch concat { conv(3) as a | conv(5) as b relu } flatten linear(2) as fc }"
)


def test_mlp_producers_and_consumers_skip_activations(lower_text):
    g = lower_text(MLP)
    assert producers(g, "mlp.h2") == ["mlp.h1"]
    assert producers(g, "mlp.h1") == []  # fed by the network's input
    assert consumers(g, "mlp.h1") == [Consumer("mlp.h2", 0, 1)]
    assert consumers(g, "mlp.out") == []  # reaches the network's output
    assert producers(g, "mlp.out") == ["mlp.h2"]


def test_cnn_consumer_through_flatten_spreads_each_channel(lower_text):
    g = lower_text(CNN)
    assert consumers(g, "net.c1") == [Consumer("net.c2", 0, 1)]
    # c2 gives [6, 4, 4]: each channel becomes 16 consecutive features of fc's input
    assert consumers(g, "net.c2") == [Consumer("net.fc", 0, 16)]
    assert producers(g, "net.fc") == ["net.c2"]


def test_residual_add_ties_both_paths(lower_text):
    g = lower_text(RESIDUAL)
    assert producers(g, "res.2") == ["res.1.0.a", "res.stem"]  # the relu after the add
    assert consumers(g, "res.stem") == [Consumer("res.1.0.a"), Consumer("res.fc")]
    assert consumers(g, "res.1.0.a") == [Consumer("res.fc")]
    assert producers(g, "res.1.0.a") == ["res.stem"]


def test_concat_shifts_the_later_paths_channels(lower_text):
    g = lower_text(CONCAT)
    assert consumers(g, "cat.stem") == [Consumer("cat.1.a"), Consumer("cat.1.1.b")]
    # the concat gives [8, 8, 8]; flatten spreads each channel over 64 features
    assert consumers(g, "cat.1.a") == [Consumer("cat.fc", 0, 64)]
    assert consumers(g, "cat.1.1.b") == [Consumer("cat.fc", 3 * 64, 64)]
    assert producers(g, "cat.fc") == ["cat.1.a", "cat.1.1.b"]


def test_concat_after_flatten_shifts_by_features(lower_text):
    g = lower_text("model m { conv(2) as c branch concat { flatten | conv(3) flatten } linear(4) as fc }")
    assert consumers(g, "m.c") == [Consumer("m.fc", 0, 64), Consumer("m.1.1.0")]
    assert consumers(g, "m.1.1.0") == [Consumer("m.fc", 2 * 64, 64)]


def test_choice_flows_through_its_chosen_path_only(lower_text):
    g = lower_text(
        "model m { flatten linear(4) as a choice { linear(3) as x | linear(5) as y } linear(2) as z }"
    )
    assert consumers(g, "m.a") == [Consumer("m.2.x")]
    assert producers(g, "m.z") == ["m.2.x"]


def test_transparency_of_ops_and_containers(lower_text):
    g = lower_text(
        "model m { conv(2) { bn relu } branch add { relu | identity } branch concat { identity | identity } "
        "flatten choice { dropout | linear(2) } }"
    )
    assert [is_transparent(g, n) for n in ("m.0", "m.1", "m.2", "m.3", "m.4", "m.5")] == [
        False,
        True,
        True,
        False,
        False,
        True,
    ]
    assert is_transparent(g, "m.1.0") and not is_transparent(g, "m.5.1")


def test_next_and_prev_op_stop_at_any_op(lower_text):
    g = lower_text(RESIDUAL)
    assert next_op(g, "res.stem") == ["res.1.0.a", "res.1.1"]
    assert prev_op(g, "res.2") == ["res.1.0.2", "res.1.1"]
    assert next_op(g, "res.fc") == [] and prev_op(g, "res.stem") == []


def test_queries_on_a_deep_chain_do_not_recurse(lower_text):
    g = lower_text("model m { flatten linear(4) as first " + "relu " * 3000 + "linear(2) as last }")
    flow = DataFlow(g)
    assert flow.consumers("m.first") == [Consumer("m.last")]
    assert flow.producers("m.last") == ["m.first"]


def test_reach_lists_what_widening_must_resize_and_what_forbids_it(lower_text):
    g = lower_text(
        "model r { conv(4) as stem bn as norm relu branch add { conv(4) as a | identity } "
        "gap flatten linear(2) as fc }"
    )
    stem = reach(g, "r.stem")
    assert stem.consumers == [Consumer("r.3.a"), Consumer("r.fc")]
    assert Consumer("r.norm") in stem.passes and Consumer("r.3.1") in stem.passes
    assert stem.merges == ["r.3"] and not stem.reaches_output  # the identity path ties widths
    fc = reach(g, "r.fc")
    assert fc.consumers == [] and fc.reaches_output


def test_reach_through_concat_and_flatten_gives_offsets_for_per_channel_ops(lower_text):
    g = lower_text(
        "model m { conv(2) as a branch concat { identity | conv(3) as b } bn flatten linear(4) as fc }"
    )
    b = reach(g, "m.1.b")
    assert b.merges == [] and not b.reaches_output
    assert Consumer("m.2", 2, 1) in b.passes  # the bn after the concat sees b's channels at 2..4
    assert b.consumers == [Consumer("m.fc", 2 * 64, 64)]


def test_a_slice_stops_the_forward_walk_and_is_listed(lower_text):
    g = lower_text("model m { conv(4) as a bn branch concat { slice(0, 2) | slice(2, 4) } conv(3) as b }")
    a = reach(g, "m.a")
    assert a.slices == ["m.2.0", "m.2.1"] and a.consumers == []  # past it, bounds decide
    assert producers(g, "m.b") == ["m.a"]  # backwards, the sliced channels still come from a
