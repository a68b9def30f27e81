"""A branch feeds its input to every path and merges them as its `merge` says."""

from __future__ import annotations

import pytest
import torch

from growdsl.compile import compile_graph
from growdsl.ir.graph import ArchGraph


def _branch(
    add_op, merge: str, input_shape: tuple[int, ...], paths: list[list[tuple[str, dict]]]
) -> ArchGraph:
    """`net { branch merge { path | path ... } }`; a one-op path is the op itself, as lowered."""
    graph = ArchGraph.new("net", input_shape)
    graph.add("net", "net.0", "branch", merge=merge)
    for p, ops in enumerate(paths):
        path = f"net.0.{p}"
        if len(ops) == 1:
            add_op(graph, "net.0", path, ops[0][0], **ops[0][1])
            continue
        graph.add("net.0", path, "seq")
        for i, (op, args) in enumerate(ops):
            add_op(graph, path, f"{path}.{i}", op, **args)
    return graph


def _path_outputs(net, graph: ArchGraph, x: torch.Tensor) -> list[torch.Tensor]:
    return [net.module_at(p)(x) for p in graph.children("net.0")]


FLAT_PATHS = [[("linear", {"out": 4})], [("linear", {"out": 4}), ("tanh", {})], [("identity", {})]]
IMAGE_PATHS = [[("conv", {"out": 4, "k": 3}), ("bn", {}), ("relu", {})], [("identity", {})]]


@pytest.mark.parametrize("paths", [FLAT_PATHS, IMAGE_PATHS], ids=["flat", "image"])
def test_add_sums_the_paths(add_op, check_shapes, paths):
    shape = (4,) if paths is FLAT_PATHS else (4, 6, 6)
    graph = _branch(add_op, "add", shape, paths)
    net = compile_graph(graph).eval()
    x = torch.randn(3, *shape)
    torch.testing.assert_close(net(x), sum(_path_outputs(net, graph, x)))
    check_shapes(graph, net)


def test_mean_averages_the_paths(add_op, check_shapes):
    graph = _branch(add_op, "mean", (4,), FLAT_PATHS)
    net = compile_graph(graph)
    x = torch.randn(3, 4)
    torch.testing.assert_close(net(x), sum(_path_outputs(net, graph, x)) / 3)
    check_shapes(graph, net)


@pytest.mark.parametrize("shape", [(4,), (4, 5, 5)], ids=["flat", "image"])
def test_concat_stacks_the_paths_along_channels(add_op, check_shapes, shape):
    first = [("linear", {"out": 3})] if len(shape) == 1 else [("conv", {"out": 3, "k": 1})]
    graph = _branch(add_op, "concat", shape, [first, [("identity", {})]])
    net = compile_graph(graph)
    x = torch.randn(2, *shape)
    torch.testing.assert_close(net(x), torch.cat(_path_outputs(net, graph, x), dim=1))
    assert net(x).shape[1] == 3 + 4
    check_shapes(graph, net)


def test_single_path_branch_is_that_path(add_op):
    for merge in ("add", "mean", "concat"):
        graph = _branch(add_op, merge, (4,), [[("linear", {"out": 2})]])
        net = compile_graph(graph)
        x = torch.randn(3, 4)
        torch.testing.assert_close(net(x), net.module_at("net.0.0")(x))
