"""Did-you-mean suggestions for unknown names (ops, blocks, options, data sets, keywords)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """The closest known name, or None when nothing is close enough to be a likely typo."""
    matches = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_name_message(what: str, name: str, known: Iterable[str]) -> str:
    """`unknown op 'lineer': did you mean 'linear'?`, or a list of the known names."""
    known = sorted(set(known))
    guess = did_you_mean(name, known)
    if guess:
        return f"unknown {what} '{name}': did you mean '{guess}'?"
    return f"unknown {what} '{name}' (known: {', '.join(known)})"


def not_implemented_message(what: str, name: str, description: str) -> str:
    """`search method 'pbt' (PBT-NAS ...) is not implemented in this version of growdsl`: for a
    name the language knows (so it is no typo) that this version cannot run yet."""
    return f"{what} '{name}' ({description}) is not implemented in this version of growdsl"
