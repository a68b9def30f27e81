"""The issue's matrix, one layer kind at a time, in float32 as runs train: each path-level
transform on a linear, a conv, a conv+BN, a grouped conv and a conv inside nested branches (and
`replace` on an identity two branches deep) keeps the outputs within 1e-5 at zero noise in eval
mode; so does split-concat of an identity, a max or average pool and a grouped conv (groups 2
and 4, inside nested branches, inside a shared cell), whose paths each read their half of the
input channels (docs/methods/pathlevel.md). A change to a shared cell, and every input split,
leaves a compiled net whose every node has the shape, and whose params and FLOPs are, what the
graph says."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from growdsl.compile import compile_graph
from growdsl.grow.net import Net
from growdsl.grow.pathlevel import PathLevelTransform
from growdsl.grow.pathlevel.inits import replaced_stats
from growdsl.grow.pathlevel.sites import insert_identity, replace_identity, replicate_add, split_concat
from growdsl.grow.pathlevel.transform import Payload
from growdsl.grow.surgery import carry
from growdsl.grow.transform import Candidate
from growdsl.ir import flops, infer_shapes, lower, param_count
from growdsl.ir.cells import same_tree
from growdsl.ir.edits import EditError, concat_split
from growdsl.lang import parse_text
from growdsl.lang.ast import Call

LAYERS = """
model m {
    conv(4) as plain relu
    conv(4) as convbn bn relu
    conv(4, groups: 2) as grouped bn relu
    conv(8, groups: 4) as grouped4 bn relu
    identity as ident
    maxpool(3, stride: 1, padding: 1) as mpool
    avgpool(2) as apool bn
    branch add {
        branch concat { conv(2) as nested bn | conv(6, k: 1, groups: 2) as nested_grouped bn }
      | branch mean { identity as deep | conv(8, k: 1) bn }
    }
    conv(5, k: 1) relu identity as odd conv(5, groups: 5) as odd_groups
    gap flatten linear(6) as lin bn relu linear(3)
}
"""
SHARED = """
block cell(c) { conv(c, groups: 2) bn relu branch add { conv(c, k: 1) bn | identity } }
model m { conv(4) bn relu cell(4) as a maxpool cell(4) as b gap flatten linear(3) }
"""
SHAPE = (2, 6, 6)


def _net(text: str) -> tuple[Net, torch.Tensor]:
    torch.manual_seed(0)
    graph = lower(parse_text(text), SHAPE, 3)
    model = compile_graph(graph)
    with torch.no_grad():  # batch norms with running statistics of their own
        for _ in range(3):
            model(torch.randn(32, *SHAPE))
    model.eval()
    return Net(graph, model), torch.randn(64, *SHAPE, generator=torch.Generator().manual_seed(1))


def _grown(net: Net, edit, x: torch.Tensor) -> Net:
    call = Call("pathlevel", ())
    t = PathLevelTransform({**PathLevelTransform.from_call(call).options, "noise": 0.0}, None, call)
    cand = Candidate("pathlevel", edit, 1.0, {}, Payload(0, replaced_stats(net, edit, x)))
    return carry(net, edit, t.init([cand]), torch.Generator().manual_seed(0))[0]


def _max_change(net: Net, grown: Net, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float((grown.model(x) - net.model(x)).abs().max())


BUILDERS = {
    "replicate_add": replicate_add,
    "replicate_add x3": lambda g, n: replicate_add(g, n, copies=3),
    "split_concat": split_concat,
    "insert": insert_identity,
}


@pytest.mark.parametrize("label", ["plain", "convbn", "grouped", "nested", "lin"])
@pytest.mark.parametrize("op", list(BUILDERS))
def test_each_transform_on_each_layer_kind_keeps_the_outputs(op, label):
    net, x = _net(LAYERS)
    (node,) = net.graph.by_label(label)
    edit = BUILDERS[op](net.graph, node)
    assert edit is not None
    assert _max_change(net, _grown(net, edit, x), x) < 1e-5


@pytest.mark.parametrize(
    ("label", "halves"),
    [
        ("grouped", [(0, 2), (2, 4)]),
        ("grouped4", [(0, 2), (2, 4)]),
        ("nested_grouped", [(0, 4), (4, 8)]),
        ("ident", [(0, 4), (4, 8)]),
        ("mpool", [(0, 4), (4, 8)]),
        ("apool", [(0, 4), (4, 8)]),
        ("odd", [(0, 3), (3, 5)]),  # odd channels: the first path takes the larger half
    ],
)
def test_split_concat_of_an_identity_a_pool_or_a_grouped_conv_splits_its_input_exactly(label, halves):
    net, x = _net(LAYERS)
    (node,) = net.graph.by_label(label)
    edit = split_concat(net.graph, node)
    grown = _grown(net, edit, x)
    assert _max_change(net, grown, x) < 1e-5
    branch = edit.target  # the branch takes the id of the layer (the op, or its seq with the bn)
    assert grown.graph[branch]["merge"] == "concat"
    slices = [grown.graph.children(path)[0] for path in grown.graph.children(branch)]
    assert [(grown.graph[s]["args"]["start"], grown.graph[s]["args"]["end"]) for s in slices] == halves
    shapes, params, counted = _torch_counts(grown)
    assert shapes == {n: s.out for n, s in infer_shapes(grown.graph).items()}
    assert (
        (params, counted)
        == (param_count(grown.graph), flops(grown.graph))
        == (
            param_count(net.graph),
            flops(net.graph),
        )
    )


def test_split_concat_refuses_a_conv_whose_groups_two_paths_cannot_share():
    net, _ = _net(LAYERS)
    (node,) = net.graph.by_label("odd_groups")
    assert split_concat(net.graph, node) is None
    with pytest.raises(EditError, match="is a conv of 5 groups, which 2 paths cannot share"):
        concat_split(net.graph, node, 2)


@pytest.mark.parametrize("what", ["conv", "sepconv"])
def test_replacing_an_identity_two_branches_deep_keeps_the_outputs(what):
    net, x = _net(LAYERS)
    (node,) = net.graph.by_label("deep")
    assert _max_change(net, _grown(net, replace_identity(net.graph, node, what), x), x) < 1e-5


def _tree(graph, use: str) -> list[tuple]:
    return [(n, graph.kind(n), graph[n].get("op")) for n in graph.walk(use)]


def _torch_counts(net: Net) -> tuple[dict[str, tuple[int, ...]], int, int]:
    """Each live node's output shape, the params and the FLOPs torch counts for the module."""
    seen, hooks = {}, []
    for node in net.graph.walk():

        def record(_m, _i, out, node=node) -> None:  # noqa: ANN001
            seen[node] = tuple(out.shape[1:])

        hooks.append(net.model.module_at(node).register_forward_hook(record))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net.model(torch.randn(1, *SHAPE))
    for hook in hooks:
        hook.remove()
    return seen, sum(p.numel() for p in net.model.parameters()), counter.get_total_flops()


def test_every_shared_change_matches_the_graph_in_shapes_params_and_flops():
    net, x = _net(SHARED)
    call = Call("pathlevel", ())
    t = PathLevelTransform(
        {
            **PathLevelTransform.from_call(call).options,
            "noise": 0.0,
            "replace_with": ["conv", "sepconv", "maxpool", "avgpool"],
        },
        None,
        call,
    )
    kinds, split_at = set(), set()
    for op, node, edit in t.edits(net.graph):
        if not node.startswith(("m.a.", "m.b.")):
            continue
        if op == "split_concat":
            split_at.add((net.graph[node]["op"], net.graph[node]["args"].get("groups")))
        grown = _grown(net, edit, x)
        assert all(_tree(grown.graph, use) != _tree(net.graph, use) for use in ("m.a", "m.b")), op
        assert same_tree(grown.graph, "m.a", "m.b"), op
        shapes, params, counted = _torch_counts(grown)
        assert shapes == {n: s.out for n, s in infer_shapes(grown.graph).items()}, op
        assert (params, counted) == (param_count(grown.graph), flops(grown.graph)), op
        kinds.add(op)
    assert kinds == {"replicate_add", "split_concat", "insert", "replace:conv", "replace:sepconv",
                     "replace:maxpool", "replace:avgpool"}  # fmt: skip
    # the grouped conv and the identity split their input, at both uses
    assert {("conv", 2), ("identity", None), ("conv", 1)} == split_at
