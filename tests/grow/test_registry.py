"""The transform registry: a grow block's transform is found by its name, and the method's module
`growdsl.grow.<name>` is imported the first time one names it (tests/cli/test_fast_cli.py checks
that `check` imports no other)."""

from __future__ import annotations

import pytest

from growdsl.errors import SpecError
from growdsl.grow import registry
from growdsl.grow.policy import check_grow
from growdsl.lang import parse_text


def _grow_block(transform: str):  # noqa: ANN202 - a GrowBlock
    spec = parse_text(
        "data spirals(n: 300, val: 0.1)\n"
        "model m { linear(8..16) relu linear(classes) }\n"
        f"grow {{ every 2 epochs {transform} }}\n"
    )
    return spec.grow


@pytest.mark.parametrize("name", sorted(registry.KNOWN_TRANSFORMS))
def test_every_transform_of_the_language_has_a_module_that_registers_it(name):
    factory = registry.transform_factory(name)
    assert factory is not None and factory is registry.IMPLEMENTED_TRANSFORMS[name]
    owner = getattr(factory, "__self__", factory)  # a transform class's from_call: the class
    assert owner.__module__.startswith(f"growdsl.grow.{name}")


def test_a_known_transform_that_no_module_implements_is_reported_as_not_implemented(monkeypatch):
    monkeypatch.setitem(registry.KNOWN_TRANSFORMS, "shrink", "magnitude pruning")
    assert registry.transform_factory("shrink") is None
    with pytest.raises(SpecError, match=r"'shrink' \(magnitude pruning\) is not implemented"):
        check_grow(_grow_block("shrink(frac: 0.1)"))


def test_a_name_the_language_does_not_know_imports_nothing_and_has_no_factory():
    assert registry.transform_factory("grow") is None  # growdsl.grow itself is no method
    with pytest.raises(SpecError, match="unknown growth transform 'splt'.*split"):
        check_grow(_grow_block("splt(frac: 0.1)"))
