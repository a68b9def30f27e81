"""The run directory: where a run writes, and what it refuses to overwrite.

Default: `runs/<model name>-<YYYYmmdd-HHMMSS>/`, never an existing folder (a `-2`, `-3`, ...
suffix is added when two runs start in the same second). With `--out DIR`: DIR must not exist
or be empty, unless `force`. With `force`, a non-empty DIR is used as it is: the files a run
writes (`RUN_FILES`, the export files) are replaced, and every other file is left alone; nothing
is deleted, so `force` can never lose data that growdsl did not write.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from growdsl import strict_json
from growdsl.errors import RunError
from growdsl.export import write_atomically

SPEC = "spec.grow"
HISTORY = "history.jsonl"
MODEL = "model.pt"
RUN_FILES = (SPEC, HISTORY, "checkpoint.pt", MODEL, "report.html", "report.png")


def make_run_dir(
    out: str | Path | None, model_name: str, *, force: bool = False, root: str | Path = "runs"
) -> Path:
    """Create (or, with `force`, accept) the folder a new run writes to; a folder that cannot be
    made (a file in the way, no permission, a dangling link) is a RunError naming it."""
    try:
        return _make_run_dir(out, model_name, force, Path(root))
    except OSError as e:
        where = e.filename or out or root
        raise RunError(f"cannot create the run folder {where}: {e.strerror or e}") from e


def _make_run_dir(out: str | Path | None, model_name: str, force: bool, root: Path) -> Path:
    if out is None:
        return _fresh_default(root, model_name)
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise RunError(f"--out {path} is a file, not a folder")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise RunError(
            f"--out {path} exists and is not empty; choose another folder, or pass --force to write "
            "into it (the files a run writes are replaced, other files are kept)"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fresh_default(root: Path, model_name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = root / (f"{model_name}-{stamp}" + (f"-{n}" if n > 1 else ""))
        try:
            path.mkdir()  # exist_ok=False: a folder another run just made is never shared
            return path
        except FileExistsError:
            continue
    raise RunError(f"could not find a free run folder name under {root} for {model_name}-{stamp}")


def write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda p: p.write_text(text))


def write_history(run_dir: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace history.jsonl with `records`, one JSON object a line (used at start and on resume)."""
    write_text(run_dir / HISTORY, "".join(strict_json.dumps(r) + "\n" for r in records))


def append_history(run_dir: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append records as they happen, so a crashed run still shows how far it got."""
    with open(run_dir / HISTORY, "a") as f:
        for record in records:
            f.write(strict_json.dumps(record) + "\n")
        f.flush()


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / HISTORY
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
