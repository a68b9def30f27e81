"""Validation of a `grow` block against the transforms this version implements."""

from __future__ import annotations

from growdsl.errors import SpecError
from growdsl.lang.ast import GrowBlock, TransformStmt
from growdsl.lang.suggest import did_you_mean

# The transforms of LANGUAGE.md, each with the issue that brings it; none is implemented yet.
KNOWN_TRANSFORMS: dict[str, str] = {
    "split": "splitting steepest descent",
    "firefly": "firefly descent",
    "pathlevel": "path-level network transformation",
}
IMPLEMENTED_TRANSFORMS: dict[str, object] = {}


def check_grow(block: GrowBlock | None) -> None:
    """Raise a SpecError for a grow block that names a transform this version cannot run."""
    if block is None:
        return
    transforms = [s for s in block.statements if isinstance(s, TransformStmt)]
    if not transforms:
        raise SpecError("this grow block names no transform", block.span,
                        expected="a transform such as split(frac: 0.25)")
    for stmt in transforms:
        name = stmt.call.name
        if name in IMPLEMENTED_TRANSFORMS:
            continue
        if name in KNOWN_TRANSFORMS:
            raise SpecError(
                f"growth transform '{name}' ({KNOWN_TRANSFORMS[name]}) is not implemented in this "
                "version of growdsl",
                stmt.call.span,
                hint="remove the grow block to train the architecture as it is",
            )
        guess = did_you_mean(name, KNOWN_TRANSFORMS)
        raise SpecError(
            f"unknown growth transform '{name}'" + (f": did you mean '{guess}'?" if guess else ""),
            stmt.call.span,
            expected="one of " + ", ".join(KNOWN_TRANSFORMS),
        )
