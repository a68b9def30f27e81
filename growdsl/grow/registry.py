"""The transforms a `grow` block may name. Each growth method registers its factory here when its
module is imported; the policy asks `transform_factory` and never imports a transform by name, so a
new method is one module, `growdsl.grow.<name>`, one `register_transform` call in it, and its
name in `KNOWN_TRANSFORMS`.

A method's module is imported the first time a grow block names it, not with `growdsl.grow`: so
`growdsl check` of a spec that only splits never loads firefly's or pathlevel's code
(tests/cli/test_fast_cli.py)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from growdsl.lang.ast import Call

if TYPE_CHECKING:
    from growdsl.grow.transform import Transform

# The transforms of the language (docs/language.md); those registered below can run.
KNOWN_TRANSFORMS: dict[str, str] = {
    "split": "splitting steepest descent",
    "firefly": "firefly descent",
    "pathlevel": "path-level network transformation",
    "gradmax": "GradMax: new neurons that maximise the gradient norm",
    "tiny": "TINY: new neurons that best reduce the expressivity bottleneck",
    "net2wider": "Net2WiderNet: function-preserving copies of neurons",
    "net2deeper": "Net2DeeperNet: identity layers",
}
TransformFactory = Callable[[Call], "Transform"]
IMPLEMENTED_TRANSFORMS: dict[str, TransformFactory] = {}


def register_transform(name: str, factory: TransformFactory) -> None:
    """Make `name(...)` in a grow block build its transform with `factory(call)` (which validates
    the call's options, raising SpecErrors at their places)."""
    if name not in KNOWN_TRANSFORMS:
        raise ValueError(f"{name!r} is not a transform of the language: add it to KNOWN_TRANSFORMS")
    IMPLEMENTED_TRANSFORMS[name] = factory


def transform_factory(name: str) -> TransformFactory | None:
    """The factory of the transform `name`, importing `growdsl.grow.<name>` (which registers it)
    the first time; None for a name no module implements."""
    if name not in IMPLEMENTED_TRANSFORMS and name in KNOWN_TRANSFORMS:
        module = f"growdsl.grow.{name}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:  # the method's module exists but imports something missing
                raise
    return IMPLEMENTED_TRANSFORMS.get(name)
