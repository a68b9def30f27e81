"""Strict JSON: the one way growdsl writes JSON (`history.jsonl`, `graph.json`, exports).

Python's `json` writes a NaN or an infinity as the bare words `NaN` and `Infinity`, which are not
JSON: `jq`, JavaScript's `JSON.parse` and most other readers reject the whole file. A diverging
run produces exactly such numbers, so every writer goes through `dumps`, which writes with
`allow_nan=False` after replacing each non-finite number by `null` and naming where it stood in a
`nonfinite` list on the top-level object:

    {"event": "epoch", "loss": NaN}          ->  {"event": "epoch", "loss": null, "nonfinite": ["loss"]}
    {"detail": {"eigenvalues": [-1.0, inf]}} ->  {"detail": {"eigenvalues": [-1.0, null]},
                                                  "nonfinite": ["detail.eigenvalues.1"]}

A path joins dict keys and list indices with dots. A reader that needs the value tells a missing
one (`null`, not in `nonfinite`) from a non-finite one (`null`, listed).
"""

from __future__ import annotations

import json
import math
from typing import Any

NONFINITE = "nonfinite"


def finite(value: Any) -> tuple[Any, list[str]]:
    """`value` with every non-finite float replaced by None, and the dotted paths of those floats."""
    paths: list[str] = []

    def walk(v: Any, path: str) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            paths.append(path)
            return None
        if isinstance(v, dict):
            return {k: walk(x, f"{path}.{k}" if path else str(k)) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x, f"{path}.{i}" if path else str(i)) for i, x in enumerate(v)]
        return v

    return walk(value, ""), paths


def dumps(value: Any, **kwargs: Any) -> str:
    """`json.dumps` that always writes strict JSON: non-finite floats become `null`, listed under
    `nonfinite` (merged with any list already there) when `value` is a dict. A non-finite float
    outside a dict has no place for its flag, so it is an error, as `allow_nan=False` makes it."""
    clean, paths = finite(value)
    if paths and isinstance(clean, dict):
        clean[NONFINITE] = list(dict.fromkeys([*(clean.get(NONFINITE) or []), *paths]))
    elif paths:
        raise ValueError(f"non-finite number at {', '.join(paths)} with no object to flag it in")
    return json.dumps(clean, allow_nan=False, **kwargs)


def loads(text: str) -> Any:
    """`json.loads` that refuses `NaN` and `Infinity`, as every JSON reader but Python's does: what
    a file growdsl wrote must pass it."""

    def refuse(word: str) -> Any:
        raise ValueError(f"not JSON: {word}")

    return json.loads(text, parse_constant=refuse)
