"""compile: an `ArchGraph` to a torch `nn.Module` whose parameter names are node ids."""

from growdsl.compile.compiler import GrowNet, compile_graph

__all__ = ["GrowNet", "compile_graph"]
