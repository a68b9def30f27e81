"""The run directory: where a run writes, and what it refuses to overwrite.

Default: `runs/<model name>-<YYYYmmdd-HHMMSS>/`, never an existing folder (a `-2`, `-3`, ...
suffix is added when two runs start in the same second). With `--out DIR`: DIR must not exist
or be empty, unless `force`. With `force`, a non-empty DIR is reused: what a previous run or
search wrote there (`RUN_FILES`, the export files, and the `leftovers` the caller names: a
search's state, log and members' folder) is removed first, so the folder holds one run, never
another's checkpoint or metrics beside this one's; every other file is left alone, so `force`
can never lose data that growdsl did not write.

One owner at a time: `run` and `resume` hold an exclusive lock on the folder for their whole life
(`fcntl.flock` on `run.lock`, which holds the owner's pid), so a second process is refused with
the holder's pid instead of interleaving its history with the first one's. A new run's folder is
claimed before it is checked for emptiness, so two runs started together on one `--out` cannot
both pass the check. Once claimed, the folder's stale temporary files (`.checkpoint.pt.*.tmp`
and the like, left by a run killed during an atomic write) are removed: nobody else can be
writing them. `run.json` holds the run's identity, a random `run_id` and the SHA-256 of the spec
as run; each checkpoint carries the same `run_id`, so `resume` refuses a checkpoint copied in
from another run.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from growdsl import plugins, strict_json
from growdsl.errors import CheckpointError, RunError
from growdsl.export import FILE_NAMES, write_atomically
from growdsl.run.records import read_history  # noqa: F401 - the history's reader, for this module's users

SPEC = "spec.grow"
HISTORY = "history.jsonl"
MODEL = "model.pt"
LOCK = "run.lock"
IDENTITY = "run.json"
RUN_FILES = (
    SPEC,
    HISTORY,
    "checkpoint.pt",
    MODEL,
    "report.html",
    "report.png",
    "architecture.png",
    "metrics.json",
    IDENTITY,
)


def _stale_pattern(names: Iterable[str]) -> re.Pattern[str]:
    """What `write_atomically` leaves of one of `names` when killed mid-write:
    `.<file>.<8 random characters>.tmp`."""
    return re.compile(r"\.(" + "|".join(re.escape(n) for n in names) + r")\.[a-z0-9_]{8}\.tmp")


_STALE = _stale_pattern((*RUN_FILES, *FILE_NAMES.values()))


def make_run_dir(
    out: str | Path | None,
    model_name: str,
    *,
    force: bool = False,
    root: str | Path = "runs",
    leftovers: Iterable[str] = (),
) -> Path:
    """Create (or, with `force`, reuse, removing what a previous run wrote and the `leftovers`
    named) the folder a new run writes to; a folder that cannot be made (a file in the way, no
    permission, a dangling link) is a RunError naming it."""
    try:
        path = _make_run_dir(out, model_name, force, Path(root))
        if force:
            clear_previous_run(path, leftovers)
        return path
    except OSError as e:
        where = e.filename or out or root
        raise RunError(f"cannot create the run folder {where}: {e.strerror or e}") from e


def _make_run_dir(out: str | Path | None, model_name: str, force: bool, root: Path) -> Path:
    if out is None:
        return _fresh_default(root, model_name)
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise RunError(f"--out {path} is a file, not a folder")
    _refuse_unless_empty(path, force)  # before the lock file: a refused folder gets no new file
    path.mkdir(parents=True, exist_ok=True)
    claim(path)
    _refuse_unless_empty(path, force)  # again, locked: of two runs started together, one finds the other's
    return path


def _refuse_unless_empty(path: Path, force: bool) -> None:
    if not force and path.is_dir() and any(p.name != LOCK for p in path.iterdir()):
        raise RunError(
            f"--out {path} exists and is not empty; choose another folder, or pass --force to write "
            "into it (the files a run writes are replaced, other files are kept)"
        )


def clear_previous_run(run_dir: Path, leftovers: Iterable[str] = ()) -> None:
    """Remove the files a previous run wrote in `run_dir` (its run files and exports) and the
    `leftovers` (files or folders); only the folder's owner may call this."""
    for name in (*RUN_FILES, *FILE_NAMES.values(), *leftovers):
        path = run_dir / name
        if name == LOCK:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _fresh_default(root: Path, model_name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = root / (f"{model_name}-{stamp}" + (f"-{n}" if n > 1 else ""))
        try:
            path.mkdir()  # exist_ok=False: a folder another run just made is never shared
            claim(path)
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
    """Append records as they happen, so a crashed run still shows how far it got. (A line cut
    short by a full disk is harmless: `resume` rewrites the history from its checkpoint.)"""
    path = run_dir / HISTORY
    try:
        with open(path, "a") as f:
            for record in records:
                f.write(strict_json.dumps(record) + "\n")
            f.flush()
    except OSError as e:  # a failed write names no file; the message should
        raise OSError(e.errno, e.strerror, str(path)) from e


# ---------------------------------------------------------------- one owner

_CLAIMED: dict[Path, int] = {}  # folder (resolved) -> the open lock file this process holds


def claim(run_dir: Path, written: Iterable[str] = ()) -> None:
    """Take the folder's lock for this process (again: a no-op) and remove its stale temporary
    files (of the run's files, and of the `written` names a search adds); a RunError naming the
    holder's pid when another process has it. A path that is not a folder is left alone, for the
    caller to report (`resume`: no checkpoint there)."""
    key = run_dir.resolve()
    if key in _CLAIMED or not key.is_dir():
        return
    fd = os.open(key / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunError(
            f"{run_dir} is in use by another growdsl process (pid {holder}); wait for it to end, or "
            "choose another folder"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _CLAIMED[key] = fd
    remove_stale(key, written)


def remove_stale(folder: Path, written: Iterable[str] = ()) -> None:
    """Remove the temporary files a killed write left in `folder` (of the run's files and of
    `written`); only its owner may call this: nobody else can be writing them."""
    extra = tuple(written)
    stale = _stale_pattern((*RUN_FILES, *FILE_NAMES.values(), *extra)) if extra else _STALE
    for path in (p for p in folder.iterdir() if stale.fullmatch(p.name)):
        path.unlink(missing_ok=True)


def release(run_dir: Path) -> None:
    """Give the folder's lock back (the lock file stays: removing it would race a new claimant)."""
    fd = _CLAIMED.pop(run_dir.resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the last descriptor releases the flock


def releases_claims(function: Callable[..., Any]) -> Callable[..., Any]:
    """Release, when `function` returns or raises, every folder it claimed (`run`, `resume`)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        held = set(_CLAIMED)
        try:
            return function(*args, **kwargs)
        finally:
            for run_dir in set(_CLAIMED) - held:
                release(run_dir)

    return wrapper


def write_identity(run_dir: Path, spec_text: str) -> str:
    """Give a new run its identity: a fresh run id, the hash of its spec and the plugins it runs
    with (docs/plugins.md), in run.json; returns the run id, which the run's checkpoints (or a
    search's state) carry."""
    identity: dict[str, Any] = {"run_id": uuid.uuid4().hex, "spec_sha256": _sha256(spec_text)}
    if plugins.loaded():
        identity["plugins"] = plugins.loaded()
    write_text(run_dir / IDENTITY, strict_json.dumps(identity, indent=1) + "\n")
    return identity["run_id"]


def load_run_plugins(run_dir: str | Path) -> list[str]:
    """Load the plugins the run in `run_dir` ran with (its run.json says which): whatever reopens
    a run needs its ops and data sets again."""
    identity = _identity(Path(run_dir))
    return plugins.load_plugins(plugins.recorded(identity)) if identity else []


def run_id(run_dir: Path) -> str | None:
    """The run id of run.json, which every checkpoint of the run carries; None in a folder written
    before runs had identities."""
    identity = _identity(run_dir)
    return identity["run_id"] if identity else None


def check_identity(run_dir: Path, checkpoint: dict[str, Any], name: str = "checkpoint.pt") -> None:
    """A CheckpointError unless the checkpoint (`name`: a run's checkpoint.pt or a search's state)
    belongs to the run of this folder: same run id, and the spec it carries is the one the run
    started with. A folder and checkpoint that both predate run identities pass."""
    identity, theirs = _identity(run_dir), checkpoint.get("run_id")
    if identity is None and theirs is None:
        return
    path = run_dir / name
    if identity is None or theirs != identity["run_id"]:
        mine = f"run {identity['run_id']}" if identity else f"a folder without {IDENTITY}"
        raise CheckpointError(
            f"checkpoint {path} belongs to another run (run {theirs or 'without an id'}, but {run_dir} "
            f"holds {mine}); it was not loaded and nothing was overwritten"
        )
    if _sha256(checkpoint["spec"]) != identity["spec_sha256"]:
        raise CheckpointError(
            f"checkpoint {path} carries another spec than the one its run started with ({IDENTITY}); "
            "it was not loaded and nothing was overwritten"
        )


def _identity(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / IDENTITY
    if not path.is_file():
        return None
    try:
        identity = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{path} is unreadable ({e}); the run's identity cannot be checked") from e
    if not isinstance(identity, dict) or not {"run_id", "spec_sha256"} <= identity.keys():
        raise CheckpointError(f"{path} is not a growdsl run identity (run_id, spec_sha256)")
    return identity


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
