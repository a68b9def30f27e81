"""compile: an `ArchGraph` to a torch `nn.Module` whose parameter names are node ids."""

from growdsl.compile.compiler import GrowNet, check_module_names, compile_graph

__all__ = ["GrowNet", "check_module_names", "compile_graph"]
