"""compile: an `ArchGraph` to a torch `nn.Module` whose parameter names are node ids.

`check_module_names` is torch-free (`names.py`); `compile_graph` and `GrowNet` import torch when
first used, so `growdsl check` (which imports this package) never loads torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from growdsl.compile.names import check_module_names

if TYPE_CHECKING:
    from growdsl.compile.compiler import GrowNet
    from growdsl.ir.graph import ArchGraph

__all__ = ["GrowNet", "check_module_names", "compile_graph"]


def compile_graph(graph: ArchGraph) -> GrowNet:
    """Build the `GrowNet` for `graph` (`growdsl.compile.compiler.compile_graph`)."""
    from growdsl.compile.compiler import compile_graph as build

    return build(graph)


def __getattr__(name: str) -> Any:
    if name == "GrowNet":
        return importlib.import_module("growdsl.compile.compiler").GrowNet
    raise AttributeError(f"module 'growdsl.compile' has no attribute {name!r}")
