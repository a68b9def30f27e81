"""The search methods the loop can run, by name. Each method's module registers its factory here
when it is imported; the loop (`driver.py`) asks `search_factory` for a new search and for a
resumed one (by the name its state records), and never imports a method by name. So a new search
is one module with one `register_search` call; `methods.SEARCH_MODULES` names the module of each
method of the language, imported the first time a search names it (so `growdsl check` loads no
method's code).

A method the language does not know (one a user or a test adds) registers its description and
its options too: they are read like every method's (`methods.search_config`), the options every
search has (`backend`, `workers`) added."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from growdsl.options import Option
from growdsl.search.methods import COMMON_OPTIONS, KNOWN_SEARCHES, SEARCH_MODULES, SEARCH_OPTIONS

if TYPE_CHECKING:
    from growdsl.search.protocol import Search, Setup

SearchFactory = Callable[["Setup"], "Search"]
REGISTERED: dict[str, SearchFactory] = {}


def register_search(
    name: str,
    factory: SearchFactory,
    *,
    description: str | None = None,
    options: dict[str, Option] | None = None,
) -> None:
    """Make `search name(...)` run the method `factory(setup)` builds. A name the language does not
    know needs its `description` and `options` (see the module docstring)."""
    if name not in KNOWN_SEARCHES:
        if description is None or options is None:
            raise ValueError(f"search {name!r} is new to the language: give its description and options")
        KNOWN_SEARCHES[name] = description
        SEARCH_OPTIONS[name] = {**options, **COMMON_OPTIONS}
    SEARCH_MODULES.setdefault(name, factory.__module__)
    REGISTERED[name] = factory


def search_factory(name: str) -> SearchFactory:
    """The factory of the search method `name`, importing its module (which registers it) the
    first time. (`methods.search_config` has refused a name no module implements.)"""
    if name not in REGISTERED:
        importlib.import_module(SEARCH_MODULES[name])
    return REGISTERED[name]
