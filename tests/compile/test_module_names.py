"""The torch-free list of reserved module names (growdsl/compile/names.py) still covers every
attribute torch and growdsl's containers give a module, under the installed torch."""

from __future__ import annotations

import pytest
from torch import nn

from growdsl.compile import check_module_names, compile_graph
from growdsl.compile.compiler import GrowNet
from growdsl.compile.containers import BRANCHES, Chain, Choice
from growdsl.compile.names import RESERVED
from growdsl.errors import SpecError
from growdsl.ir import lower
from growdsl.lang import parse_text


def test_reserved_names_cover_every_attribute_of_the_compiled_modules():
    taken = {name for cls in (GrowNet, Chain, Choice, *BRANCHES.values()) for name in dir(cls)}
    taken |= {*vars(nn.Module()), "graph"}
    # torch.export (run by other tests in this process) marks classes with `___...` attributes
    taken = {name for name in taken if not name.startswith("___")}
    assert taken <= RESERVED, sorted(taken - RESERVED)


@pytest.mark.parametrize("label", ["training", "to", "graph", "merge"])
def test_a_reserved_label_is_refused_by_check_and_by_the_compiler_alike(label):
    spec = parse_text(f"model m {{ linear(4) as {label} relu linear(2) }}", "m.grow")
    graph = lower(spec, (3,), None)
    for step in (check_module_names, compile_graph):
        with pytest.raises(SpecError, match=f"'{label}' cannot name a module") as err:
            step(graph)
        assert err.value.span.line == 1
