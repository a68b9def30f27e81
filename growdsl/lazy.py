"""Handles to torch and numpy that import them on first use.

`growdsl check`, `fmt` and `show` must answer in a fraction of a second (docs/benchmarks.md);
importing torch takes seconds. `check` validates a `grow` block with the transforms' own option
readers, and the data catalog and training settings with theirs, so the growth and training
modules are on its import path, though they need torch only inside their functions. Those
modules take `torch` (and `nn`, `F`, `np`) from here instead of importing it: the first attribute
looked up on a handle imports the real module.

A module that needs torch while it is being imported (an `nn.Module` subclass, a type alias
evaluated at import: write those as strings) imports torch itself and must stay off the path of
`check`; tests/cli/test_fast_cli.py checks that `check`, `fmt` and `show` never load torch,
numpy's heavy users or scikit-learn.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import Any


class LazyModule:
    """A stand-in for the module `name`: every attribute is looked up on the real module, which
    is imported on the first lookup. Nothing is copied, so the handle sees what the module sees
    (a test's `monkeypatch.setattr(torch, "save", ...)`, submodules torch imports on first use).
    A lookup costs about half a microsecond more than on the module (a plain class: a module
    subclass would build an AttributeError first, five times slower), little next to the
    dispatch of one tensor operation."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        module = sys.modules.get(self._name) or importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy handle of module {self._name!r}>"


torch = LazyModule("torch")
nn = LazyModule("torch.nn")
F = LazyModule("torch.nn.functional")
np = LazyModule("numpy")


def no_grad(function: Callable[..., Any]) -> Callable[..., Any]:
    """`@torch.no_grad()` for a module that must not import torch: the decorator runs at import."""

    @functools.wraps(function)
    def without_grad(*args: Any, **kwargs: Any) -> Any:
        with torch.no_grad():
            return function(*args, **kwargs)

    return without_grad
