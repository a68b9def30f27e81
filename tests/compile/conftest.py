"""Fixtures for building small graphs by hand (args fully resolved, as lowering leaves them)
and for checking a compiled net against shape inference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from growdsl.compile import GrowNet
from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import OPS
from growdsl.ir.shapes import infer_shapes


def _add_op(graph: ArchGraph, parent: str, node_id: str, op: str, **args: Any) -> str:
    """Add op `op` under `parent` with its defaults resolved to numbers, as lowering leaves them."""
    resolved = {**OPS[op].defaults(), **args}
    if resolved.get("stride", 0) is None:  # pools: stride defaults to k
        resolved["stride"] = resolved["k"]
    if "padding" in resolved and resolved["padding"] is None:  # conv: same-size padding
        resolved["padding"] = resolved["k"] // 2
    return graph.add(parent, node_id, "op", op=op, args=resolved)


def _check_shapes_match(graph: ArchGraph, net: GrowNet, batch: int = 3) -> None:
    """Every live node's module gives exactly the per-sample output shape `infer_shapes` says."""
    shapes = infer_shapes(graph)
    seen: dict[str, tuple[int, ...]] = {}
    hooks = []
    for node_id in graph.walk():
        module = net.module_at(node_id)

        def record(_m: torch.nn.Module, _i: Any, out: torch.Tensor, node_id: str = node_id) -> None:
            seen[node_id] = tuple(out.shape[1:])

        hooks.append(module.register_forward_hook(record))
    net.eval()
    with torch.no_grad():
        net(torch.randn(batch, *graph.input_shape))
    for hook in hooks:
        hook.remove()
    assert seen == {node_id: s.out for node_id, s in shapes.items()}


@pytest.fixture
def op_graph() -> Callable[..., ArchGraph]:
    """A graph `root` holding the given `(op, args)` sequence, ids `root.0`, `root.1`, ..."""

    def build(input_shape: tuple[int, ...], *ops: tuple[str, dict[str, Any]], root: str = "net") -> ArchGraph:
        graph = ArchGraph.new(root, input_shape, classes=None)
        for i, (op, args) in enumerate(ops):
            _add_op(graph, root, f"{root}.{i}", op, **args)
        return graph

    return build


@pytest.fixture
def add_op() -> Callable[..., str]:
    return _add_op


@pytest.fixture
def check_shapes() -> Callable[..., None]:
    return _check_shapes_match
