"""growdsl: a declarative architecture-search DSL and compiler for PyTorch.

The public API mirrors the CLI (see `growdsl.api`): `load`, `lower`, `build_model`, `check`,
`check_file`, `run_spec`, `resume_run`, `export_run`, `replay`, `load_run`, `report_run`,
`compare_runs`; and `Grower`, growth inside a training loop of the user's own (docs/grower.md).
They are imported on first use, so `import growdsl` stays cheap. The packages
`growdsl.lang`, `growdsl.ir`, `growdsl.compile`, `growdsl.grow`, `growdsl.run`, `growdsl.search`
and `growdsl.export` are the pipeline's stages; no API function shares a name with one of them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = (
    "load",
    "lower",
    "build_model",
    "check",
    "check_file",
    "format_file",
    "run_spec",
    "resume_run",
    "export_run",
    "replay",
    "load_run",
    "report_run",
    "compare_runs",
)


_ELSEWHERE = {"Grower": "growdsl.grow.grower"}


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("growdsl.api"), name)
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module 'growdsl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted((*globals(), *_API, *_ELSEWHERE))
