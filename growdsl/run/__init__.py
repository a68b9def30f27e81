"""run: a Spec to a run directory — data, training loop, checkpoints, history, report.

`run(spec)` trains the spec's architecture and writes its run directory; `resume(dir)` continues
an interrupted run from its checkpoint (both in `single.py`); `train_member` trains a net from a
checkpoint payload (`member.py`). They are imported on first use: `growdsl check` needs only
`datasets.py` and `config.py` of this package, and importing the training side would bring in every
growth method and the report (tests/cli/test_fast_cli.py holds `check` to that).
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {"Run": "single", "run": "single", "resume": "single", "train_member": "member"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"growdsl.run.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'growdsl.run' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted((*globals(), *_PUBLIC))
