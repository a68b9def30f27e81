"""The transforms a `grow` block may name. Each growth method registers its factory here when its
module is imported (`growdsl.grow` imports them all); the policy reads this table and never
imports a transform by name, so a new method is one module and one `register_transform` call."""

from __future__ import annotations

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
}
TransformFactory = Callable[[Call], "Transform"]
IMPLEMENTED_TRANSFORMS: dict[str, TransformFactory] = {}


def register_transform(name: str, factory: TransformFactory) -> None:
    """Make `name(...)` in a grow block build its transform with `factory(call)` (which validates
    the call's options, raising SpecErrors at their places)."""
    if name not in KNOWN_TRANSFORMS:
        raise ValueError(f"{name!r} is not a transform of the language: add it to KNOWN_TRANSFORMS")
    IMPLEMENTED_TRANSFORMS[name] = factory
