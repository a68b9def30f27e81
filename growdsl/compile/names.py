"""Names a module cannot take in a compiled net, without importing torch.

Every label and the model name become module names (`growdsl/compile/compiler.py`), and torch
refuses a name that shadows an attribute of the module it is registered on (`training`, `to`,
`forward`, ...) or one growdsl's containers add (`graph`, `module_at`, `merge`). `growdsl check`
must refuse such names too, and it must not import torch (it starts in a fraction of a second,
docs/benchmarks.md), so the names are listed here: the attributes of `GrowNet`, `Chain`,
`Choice`, the branch containers and an `nn.Module` instance under the torch this was written
for. tests/compile/test_module_names.py checks that the list still covers them under the
installed torch.
"""

from __future__ import annotations

from growdsl.errors import SpecError
from growdsl.ir.graph import ArchGraph

# fmt: off
RESERVED = frozenset((
    "T_destination", "__annotations__", "__call__", "__class__", "__delattr__", "__dict__", "__dir__",
    "__doc__", "__eq__", "__format__", "__ge__", "__getattr__", "__getattribute__", "__getstate__",
    "__gt__", "__hash__", "__init__", "__init_subclass__", "__le__", "__lt__", "__module__", "__ne__",
    "__new__", "__reduce__", "__reduce_ex__", "__repr__", "__setattr__", "__setstate__", "__sizeof__",
    "__str__", "__subclasshook__", "__weakref__", "_apply", "_backward_hooks", "_backward_pre_hooks",
    "_buffers", "_call_impl", "_compiled_call_impl", "_forward_hooks", "_forward_hooks_always_called",
    "_forward_hooks_with_kwargs", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
    "_get_backward_hooks", "_get_backward_pre_hooks", "_get_name", "_is_full_backward_hook",
    "_load_from_state_dict", "_load_state_dict_post_hooks", "_load_state_dict_pre_hooks",
    "_maybe_warn_non_full_backward_hook", "_modules", "_named_members", "_non_persistent_buffers_set",
    "_parameters", "_register_load_state_dict_pre_hook", "_register_state_dict_hook",
    "_replicate_for_data_parallel", "_save_to_state_dict", "_slow_forward", "_state_dict_hooks",
    "_state_dict_pre_hooks", "_version", "_wrapped_call_impl", "add_module", "apply", "bfloat16", "buffers",
    "call_super_init", "children", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr",
    "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "graph", "half",
    "ipu", "load_state_dict", "merge", "module_at", "modules", "mtia", "named_buffers", "named_children",
    "named_modules", "named_parameters", "parameters", "register_backward_hook", "register_buffer",
    "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter",
    "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_", "set_extra_state",
    "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "xpu",
    "zero_grad",
))
# fmt: on


def check_name(graph: ArchGraph, node_id: str, name: str) -> None:
    """SpecError at the node's place when `name` (its label or the model name) is reserved."""
    if name in RESERVED:
        raise SpecError(
            f"'{name}' cannot name a module: it is reserved by torch.nn.Module",
            graph[node_id].get("span"),
            hint="choose another label or model name",
        )


def check_module_names(graph: ArchGraph) -> None:
    """Raise the SpecError `compile_graph` would for a label or model name torch reserves, so
    `growdsl check` catches it before a run."""
    check_name(graph, graph.root, graph.root)
    for node in graph.walk(live_only=False):
        if node != graph.root:
            check_name(graph, node, node.rsplit(".", 1)[1])
