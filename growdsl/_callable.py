"""Lets a stage package double as its API function, as DESIGN.md's public API reads:
`growdsl.compile(graph)`, `growdsl.run(spec)`, `growdsl.export(run_dir, formats)` while
`growdsl.compile`, `growdsl.run` and `growdsl.export` stay the packages that implement them."""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from growdsl import api

        return getattr(api, self.__name__.rsplit(".", 1)[1])(*args, **kwargs)


def make_callable(module_name: str) -> None:
    """Make the package `module_name` callable as `growdsl.api.<its last name>`."""
    sys.modules[module_name].__class__ = _CallablePackage
