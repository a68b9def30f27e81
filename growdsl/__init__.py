"""growdsl: a declarative architecture-search DSL and compiler for PyTorch.

The public API mirrors the CLI (see `growdsl.api`): `load`, `lower`, `compile`, `check`, `run`,
`resume`, `export`. They are imported on first use, so `import growdsl` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = ("load", "lower", "check", "check_file", "resume")
_CALLABLE_PACKAGES = ("compile", "run", "export")


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("growdsl.api"), name)
    if name in _CALLABLE_PACKAGES:
        return importlib.import_module(f"growdsl.{name}")
    raise AttributeError(f"module 'growdsl' has no attribute {name!r}")
