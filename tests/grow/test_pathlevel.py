"""Path-level transforms: each keeps the network's function at zero noise (eval mode), on linear,
conv, conv+BN, grouped conv and inside nested branches; replication noise changes it a little;
a replaced identity edge is the identity from its input's statistics; a shared cell changes at
every use; options are checked at their places."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from growdsl import api
from growdsl.compile import compile_graph
from growdsl.errors import SpecError
from growdsl.grow.net import Net
from growdsl.grow.pathlevel import PathLevelTransform
from growdsl.grow.pathlevel.inits import replaced_stats
from growdsl.grow.pathlevel.sites import replicate_add, uses_of
from growdsl.grow.pathlevel.transform import Payload
from growdsl.grow.surgery import carry
from growdsl.grow.transform import Candidate
from growdsl.ir import added_cost, flops, infer_shapes, lower, param_count
from growdsl.ir.edits import Group, Several, Wrap, apply_edit, edit_from_json, edit_to_json
from growdsl.lang import parse_text
from growdsl.lang.ast import Call

CELL = """
block cell(c) { conv(c) bn relu branch mean { conv(c, groups: 2) bn | identity } }
model m {
    conv(4) bn relu
    cell(4) as a
    cell(4) as b
    branch add { branch concat { sepconv(2) | conv(2, k: 1) bn } | identity }
    gap flatten linear(8) tanh linear(3)
}
"""
MLP = "model m { flatten linear(8) bn tanh branch mean { linear(8) tanh | identity } linear(3) }"
SHAPES = {CELL: (2, 6, 6), MLP: (1, 4, 4)}
EXACT = ("replicate_add", "split_concat", "insert", "replace:conv", "replace:sepconv")


def _net(text: str) -> Net:
    torch.manual_seed(0)
    graph = lower(parse_text(text), SHAPES[text], 3)
    model = compile_graph(graph).double()
    with torch.no_grad():  # batch norm with statistics of its own
        for _ in range(3):
            model(torch.randn(16, *SHAPES[text], dtype=torch.float64))
    model.eval()
    return Net(graph, model)


def _x(text: str) -> torch.Tensor:
    return torch.randn(24, *SHAPES[text], generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def _transform(**options) -> PathLevelTransform:
    call = Call("pathlevel", ())
    defaults = PathLevelTransform.from_call(call).options
    ops = ["replicate_add", "split_concat", "insert", "replace"]
    replace_with = ["conv", "sepconv", "maxpool", "avgpool"]
    return PathLevelTransform({**defaults, "ops": ops, "replace_with": replace_with, **options}, None, call)


def _apply(net: Net, t: PathLevelTransform, edit, x: torch.Tensor, seed: int = 0) -> Net:
    cand = Candidate("pathlevel", edit, 1.0, {}, Payload(seed, replaced_stats(net, edit, x)))
    grown, _ = carry(net, edit, t.init([cand]), torch.Generator().manual_seed(0))
    return grown


def _change(net: Net, grown: Net, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float((grown.model(x) - net.model(x)).abs().max())


@pytest.mark.parametrize("text", [CELL, MLP], ids=["cnn cell", "mlp"])
def test_every_path_level_edit_at_zero_noise_preserves_outputs(text):
    net, x = _net(text), _x(text)
    t = _transform(noise=0.0)
    found = t.edits(net.graph)
    seen = {(op, net.graph[node].get("op")) for op, node, _ in found}
    # every transform on linear, conv, conv+BN, grouped conv, sepconv and inside nested branches
    expected = {("replicate_add", "linear"), ("split_concat", "linear"), ("insert", "linear")}
    expected.add(("split_concat", "identity"))  # its input channels split (a flat input in the mlp)
    if text == CELL:
        expected = {("replicate_add", "conv"), ("split_concat", "conv"), ("insert", "sepconv")}
        expected.add(("split_concat", "identity"))
        assert any(n == "m.a.3.0.0" for op, n, _ in found if op == "replicate_add")  # grouped, nested
        assert any(n.startswith("m.5.0.") for op, n, _ in found if op == "split_concat")  # in branches
        assert any(n == "m.a.3.0.0" for op, n, _ in found if op == "split_concat")  # grouped: its input
    assert expected <= seen
    for op, node, edit in found:
        if op in EXACT:
            grown = _apply(net, t, edit, x)
            assert _change(net, grown, x) < 1e-5, (op, node)
            assert infer_shapes(grown.graph)[grown.graph.root].out == tuple(grown.model(x).shape[1:])


def test_replacing_an_identity_by_a_pool_changes_the_function_and_says_so():
    net, x = _net(CELL), _x(CELL)
    t = _transform(noise=0.0)
    for op, _node, edit in t.edits(net.graph):
        if op in ("replace:maxpool", "replace:avgpool"):
            assert _change(net, _apply(net, t, edit, x), x) > 1e-4, op  # not exact: documented


def test_replication_noise_changes_outputs_a_little_and_in_proportion():
    net, x = _net(CELL), _x(CELL)
    edit = replicate_add(net.graph, "m.a.0", copies=3)
    with torch.no_grad():
        scale = float(net.model(x).abs().max())
    changes = [_change(net, _apply(net, _transform(noise=n), edit, x, seed=3), x) for n in (6e-3, 1.2e-2)]
    assert 0 < changes[0] < 0.05 * scale  # docs/methods/pathlevel.md: first order in noise, small
    assert 1.5 < changes[1] / changes[0] < 2.5


def test_a_replaced_identity_edge_is_the_identity_from_its_input_statistics():
    net, x = _net(CELL), _x(CELL)
    t = _transform(noise=0.0, replace_with=["conv"])
    (edit,) = [e for op, n, e in t.edits(net.graph) if op == "replace:conv" and n == "m.5.1"]
    grown = _apply(net, t, edit, x)
    graft = edit.node
    seen = {}
    module = grown.model.module_at(graft)
    module.register_forward_hook(lambda _m, args, out: seen.update(inp=args[0], out=out))
    with torch.no_grad():
        grown.model(x)
    assert float((seen["out"] - seen["inp"]).abs().max()) < 1e-4
    bn = grown.model.module_at(f"{graft}.1")
    assert torch.allclose(bn.bias, bn.running_mean) and torch.allclose(bn.weight**2, bn.running_var + bn.eps)


def test_a_change_to_a_shared_cell_is_made_at_every_use_and_costs_match_the_module():
    net, x = _net(CELL), _x(CELL)
    assert uses_of(net.graph, "m.a.0") == ["m.a.0", "m.b.0"]
    t_shared, t_one = _transform(noise=0.0), _transform(noise=0.0, shared=False)
    shared = [e for op, n, e in t_shared.edits(net.graph) if op == "replicate_add" and n == "m.a.0"][0]
    one = [e for op, n, e in t_one.edits(net.graph) if op == "replicate_add" and n == "m.a.0"][0]
    grown = _apply(net, t_shared, shared, x)
    assert grown.graph.kind("m.a.0") == grown.graph.kind("m.b.0") == "branch"
    single, _ = apply_edit(net.graph, one)
    assert single.kind("m.a.0") == "branch" and single.kind("m.b.0") == "op"
    for what in (param_count, flops):
        assert what(grown.graph) - what(net.graph) == 2 * (what(single) - what(net.graph))
    assert param_count(grown.graph) == sum(p.numel() for p in grown.model.parameters())
    assert _change(net, grown, x) < 1e-5
    # after the change the uses are still one cell: the next change goes to both again
    again = [e for op, n, e in t_shared.edits(grown.graph) if op == "split_concat" and n.startswith("m.a.")]
    assert again and all(len(e.edits) >= 2 for e in again)


def test_several_and_group_round_trip_through_json():
    net = _net(CELL)
    edit = replicate_add(net.graph, "m.a.0")
    assert isinstance(edit, Several) and edit.edits == (Group("m.a.0", 2), Wrap("m.a.0", "mean", 2))
    assert edit_from_json(edit_to_json(edit)) == edit


@pytest.mark.parametrize(
    ("grow", "message"),
    [
        ("pathlevel(ops: [replicate, insert])", "bad value"),
        ("pathlevel(copies: 4)", "bad value 4"),
        ("pathlevel(k: 2)", "bad value 2"),
        ("pathlevel(choose: best)", "bad value best"),
        ("pathlevel(ops: [insert], replace_with: [conv])", "ops has no replace"),
        ("pathlevel(on: [nope])", "no node is labelled 'nope'"),
    ],
)
def test_pathlevel_options_are_checked_at_their_places(grow, message):
    model = CELL.replace("linear(3)", "linear(classes)")  # the data's 10 classes
    text = f"data digits(test: 0.2)\n{model}\ntrain {{ epochs 2 }}\ngrow {{ {grow} }}\n"
    with pytest.raises(SpecError, match=message) as info:
        api.check(parse_text(text, "pl.grow"))
    grow_line = text.splitlines().index(f"grow {{ {grow} }}") + 1
    assert info.value.span is not None and info.value.span.line == grow_line


def test_pathlevel_cannot_grow_a_continual_run():
    with pytest.raises(SpecError, match="changes old paths"):
        PathLevelTransform.from_call(Call("pathlevel", ())).continual()


def test_shared_false_keeps_the_other_use():
    net = _net(CELL)
    t = _transform(shared=False)
    assert all(
        not isinstance(e, Several) or len({p.target.split(".")[1] for p in e.edits}) == 1
        for _op, _n, e in t.edits(net.graph)
    )
    assert dataclasses.replace(t).options["shared"] is False


def test_random_choice_takes_every_kind_of_candidate_not_only_parameter_free_ones():
    # the policy ranks by score per added parameter; a bare uniform score made insert or
    # split_concat (no parameters) win whenever one applied: never a replication or a replacement
    net, x = _net(CELL), _x(CELL)
    t = _transform(choose="random", replace_with=["conv"], on=["a"])
    taken = set()
    for seed in range(24):
        cands = t.propose(
            net, (x, torch.zeros(len(x), dtype=torch.long)), None, torch.Generator().manual_seed(seed)
        )
        best = max(cands, key=lambda c: c.score / max(added_cost(net.graph, c.edit)[0], 1))
        taken.add(best.detail["op"])
    assert {"replicate_add", "replace:conv"} <= taken and taken & {"insert", "split_concat"}
