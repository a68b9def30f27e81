"""`compile_graph`: module paths follow node ids, choices compile one path, init is seeded."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from growdsl.compile import GrowNet, compile_graph
from growdsl.errors import SpecError
from growdsl.ir.graph import ArchGraph


@pytest.fixture
def resnet_graph(add_op) -> ArchGraph:
    """A stem, one residual block and a head:

    `net { {conv bn relu} as stem  {branch add {conv bn relu conv bn | identity} relu}  gap flatten linear }`
    """
    g = ArchGraph.new("net", (3, 8, 8), classes=10)
    g.add("net", "net.stem", "seq", label="stem")
    add_op(g, "net.stem", "net.stem.0", "conv", out=8, k=3)
    add_op(g, "net.stem", "net.stem.1", "bn")
    add_op(g, "net.stem", "net.stem.2", "relu")
    g.add("net", "net.1", "seq")
    g.add("net.1", "net.1.0", "branch", merge="add")
    g.add("net.1.0", "net.1.0.0", "seq")
    for i, (op, args) in enumerate(
        [("conv", {"out": 8}), ("bn", {}), ("relu", {}), ("conv", {"out": 8}), ("bn", {})]
    ):
        add_op(g, "net.1.0.0", f"net.1.0.0.{i}", op, **args)
    add_op(g, "net.1.0", "net.1.0.1", "identity")
    add_op(g, "net.1", "net.1.1", "relu")
    add_op(g, "net", "net.2", "gap")
    add_op(g, "net", "net.3", "flatten")
    add_op(g, "net", "net.head", "linear", out=10)
    return g


@pytest.fixture
def choice_graph(add_op) -> ArchGraph:
    """`net { flatten choice { linear(5) | { linear(7) relu } | identity } }`."""
    g = ArchGraph.new("net", (2, 3))
    add_op(g, "net", "net.0", "flatten")
    g.add("net", "net.1", "choice", chosen=None)
    add_op(g, "net.1", "net.1.0", "linear", out=5)
    g.add("net.1", "net.1.1", "seq")
    add_op(g, "net.1.1", "net.1.1.0", "linear", out=7)
    add_op(g, "net.1.1", "net.1.1.1", "relu")
    add_op(g, "net.1", "net.1.2", "identity")
    return g


def _param_owner(graph: ArchGraph, key: str) -> str:
    node, _, _ = key.rpartition(".")
    while node not in graph:  # a sepconv's `depthwise`/`pointwise` sit one level below the node
        node, _, _ = node.rpartition(".")
    return node


def test_state_dict_keys_are_node_ids_and_param_names(resnet_graph):
    keys = list(compile_graph(resnet_graph).state_dict())
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert keys == [
        "net.stem.0.weight",
        "net.stem.0.bias",
        *[f"net.stem.1.{p}" for p in bn],
        "net.1.0.0.0.weight",
        "net.1.0.0.0.bias",
        *[f"net.1.0.0.1.{p}" for p in bn],
        "net.1.0.0.3.weight",
        "net.1.0.0.3.bias",
        *[f"net.1.0.0.4.{p}" for p in bn],
        "net.head.weight",
        "net.head.bias",
    ]


def test_module_at_returns_each_nodes_module(resnet_graph):
    net = compile_graph(resnet_graph)
    assert isinstance(net, GrowNet) and net.graph is resnet_graph
    assert isinstance(net.module_at("net.head"), nn.Linear)
    assert net.module_at("net.1.0.1").__class__ is nn.Identity
    assert net.module_at("net") is net.net
    for node_id in resnet_graph.walk():
        assert net.module_at(node_id) is net.get_submodule(node_id)


def test_module_at_rejects_unknown_nodes(resnet_graph):
    with pytest.raises(KeyError, match="no node 'net.nope'"):
        compile_graph(resnet_graph).module_at("net.nope")


def test_compiled_shapes_agree_with_inference_through_nested_blocks(resnet_graph, check_shapes):
    check_shapes(resnet_graph, compile_graph(resnet_graph))


def test_unresolved_choice_compiles_only_its_first_path(choice_graph):
    net = compile_graph(choice_graph)
    assert list(net.state_dict()) == ["net.1.0.weight", "net.1.0.bias"]
    assert net(torch.randn(4, 2, 3)).shape == (4, 5)
    with pytest.raises(KeyError, match="unchosen choice path"):
        net.module_at("net.1.1.0")


def test_chosen_choice_compiles_only_the_chosen_path(choice_graph, check_shapes):
    choice_graph["net.1"]["chosen"] = 1
    net = compile_graph(choice_graph)
    assert list(net.state_dict()) == ["net.1.1.0.weight", "net.1.1.0.bias"]
    assert list(dict(net.named_modules())) == [
        "",
        "net",
        "net.0",
        "net.1",
        "net.1.1",
        "net.1.1.0",
        "net.1.1.1",
    ]
    check_shapes(choice_graph, net)


def test_init_is_torchs_default_drawn_in_data_flow_order(add_op):
    g = ArchGraph.new("mlp", (6,))
    add_op(g, "mlp", "mlp.hidden", "linear", out=4)
    add_op(g, "mlp", "mlp.1", "relu")
    add_op(g, "mlp", "mlp.out", "linear", out=3)
    torch.manual_seed(7)
    by_hand = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    torch.manual_seed(7)
    net = compile_graph(g)
    for a, b in zip(by_hand.state_dict().values(), net.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_same_seed_gives_same_weights_and_another_seed_does_not(resnet_graph):
    def weights(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        return compile_graph(resnet_graph).state_dict()

    first, again, other = weights(0), weights(0), weights(1)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["net.head.weight"], other["net.head.weight"])


def test_a_module_replaced_by_surgery_is_used_by_forward(resnet_graph):
    net = compile_graph(resnet_graph).eval()
    x = torch.randn(2, 3, 8, 8)
    zero = nn.Linear(8, 10)
    nn.init.zeros_(zero.weight)
    nn.init.constant_(zero.bias, 1.5)
    net.module_at("net").head = zero
    torch.testing.assert_close(net(x), torch.full((2, 10), 1.5))


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_torch_compile_traces_the_whole_net_in_one_graph(resnet_graph, backend):
    torch._dynamo.reset()
    net = compile_graph(resnet_graph)
    x = torch.randn(4, 3, 8, 8)
    compiled = torch.compile(net, backend=backend, fullgraph=True)
    torch.testing.assert_close(compiled(x), net(x))
    compiled(x).sum().backward()
    assert net.module_at("net.head").weight.grad is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_compiled_net_trains_on_cuda(resnet_graph):
    net = compile_graph(resnet_graph).to("cuda")
    out = net(torch.randn(2, 3, 8, 8, device="cuda"))
    assert out.device.type == "cuda"
    out.sum().backward()
    assert net.module_at("net.stem.0").weight.grad.device.type == "cuda"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="inductor is checked on a CUDA device")
def test_torch_compile_inductor_on_cuda_agrees_with_eager(resnet_graph):
    torch._dynamo.reset()
    net = compile_graph(resnet_graph).to("cuda").eval()
    x = torch.randn(4, 3, 8, 8, device="cuda")
    compiled = torch.compile(net, backend="inductor", fullgraph=True)
    torch.testing.assert_close(compiled(x), net(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("label", ["forward", "training", "merge"])
def test_a_label_that_shadows_a_module_attribute_is_a_spec_error(label):
    g = ArchGraph.new("net", (4,))
    g.add("net", "net.0", "branch", merge="add")
    g.add("net.0", f"net.0.{label}", "op", op="identity", args={}, label=label)
    with pytest.raises(SpecError, match=f"'{label}' cannot name a module"):
        compile_graph(g)


@pytest.mark.parametrize("root", ["graph", "module_at"])
def test_a_model_name_that_shadows_a_grownet_attribute_is_a_spec_error(root):
    with pytest.raises(SpecError, match=f"'{root}' cannot name a module"):
        compile_graph(ArchGraph.new(root, (4,)))


def test_a_child_id_outside_its_parents_path_is_refused(add_op):
    g = ArchGraph.new("net", (4,))
    add_op(g, "net", "other.0", "relu")
    with pytest.raises(ValueError, match="is not 'net.<name>'"):
        compile_graph(g)


# ---------------------------------------------------------------- a law over random trees

_FLAT_OPS = st.sampled_from(
    [("linear", {"out": 3}), ("linear", {"out": 5}), ("relu", {}), ("bn", {}), ("tanh", {}), ("identity", {})]
)


@st.composite
def _flat_trees(draw, depth: int = 0):
    """A random tree over flat features: ops, nested seqs, branches (add/mean/concat), choices."""
    kind = draw(st.sampled_from(["op", "op", "seq", "branch", "choice"] if depth < 3 else ["op"]))
    if kind == "op":
        return ("op", draw(_FLAT_OPS))
    kids = draw(st.lists(_flat_trees(depth + 1), min_size=1, max_size=3))
    if kind == "branch":
        return ("branch", draw(st.sampled_from(["add", "mean", "concat"])), kids)
    return (kind, kids)


def _grow_tree(graph: ArchGraph, add_op, parent: str, tree, node_id: str) -> None:
    if tree[0] == "op":
        add_op(graph, parent, node_id, tree[1][0], **tree[1][1])
        return
    if tree[0] == "branch":
        graph.add(parent, node_id, "branch", merge=tree[1])
        kids = tree[2]
        # add/mean need every path to give the same width: end each path in linear(4)
        kids = [("seq", [k, ("op", ("linear", {"out": 4}))]) for k in kids] if tree[1] != "concat" else kids
    else:
        graph.add(parent, node_id, tree[0])
        kids = tree[1]
    for i, kid in enumerate(kids):
        _grow_tree(graph, add_op, node_id, kid, f"{node_id}.{i}")


# The fixtures only hand out stateless helper functions, so sharing them across examples is safe.
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=_flat_trees())
def test_any_tree_compiles_to_inferred_shapes_with_node_id_keys(add_op, check_shapes, tree):
    g = ArchGraph.new("net", (4,))
    _grow_tree(g, add_op, "net", tree, "net.0")
    net = compile_graph(g)
    check_shapes(g, net)
    for key in net.state_dict():
        assert g[_param_owner(g, key)]["kind"] == "op"
