"""Validation of a `search` declaration against the methods this version implements."""

from __future__ import annotations

from growdsl.errors import SpecError
from growdsl.lang.ast import SearchDecl
from growdsl.lang.suggest import not_implemented_message, unknown_name_message

KNOWN_SEARCHES: dict[str, str] = {
    "random": "random search",
    "pbt": "PBT-NAS (mixing good networks, shrink-perturb)",
    "pathlevel": "path-level search with a tree-LSTM controller",
}


def check_search(decl: SearchDecl | None) -> None:
    if decl is None:
        return
    name = decl.method.name
    if name in KNOWN_SEARCHES:
        raise SpecError(
            not_implemented_message("search method", name, KNOWN_SEARCHES[name]),
            decl.method.span,
            hint="remove the search block to train the first architecture of the space",
        )
    raise SpecError(unknown_name_message("search method", name, KNOWN_SEARCHES), decl.method.span)
