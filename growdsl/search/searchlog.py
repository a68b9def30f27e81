"""`search.jsonl`, appended to and never rewritten, kept exact through kills (docs/search.md, "The
run directory"): the search loop (`driver.py`) writes it only through this module.

The search's state (`search_state.pt`) is the truth and the log follows it. A line is first put in
the state, in `state["log"]` (the lines not in the file yet: the loop's and a method's own alike).
A `commit` moves the lines ready to be written to `state["log_next"]`, saves the state, whose
`log_bytes` is the log's length before them, and only then appends them (flushed and fsync'd) and
counts them into `log_bytes`. So wherever a process is killed, the log holds the `log_bytes` bytes
the last saved state covers, then a prefix of that state's `log_next` lines (the last perhaps torn)
and nothing else; on resume `reconcile` cuts it back to `log_bytes` and appends `log_next` again,
and the log goes on exactly as the uninterrupted search's. Every line in the log is one a saved
state holds (the state is written first), so resume never takes back a line the log showed.

The state holds no past line, and a finished member costs one save of the state and one append:
the I/O of a search grows with its number of members, not with its square.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from growdsl import strict_json
from growdsl.errors import CheckpointError

LOG = "search.jsonl"


def new_log() -> dict[str, Any]:
    """A new search's keys of the log in its state: no line yet."""
    return {"log": [], "log_next": [], "log_bytes": 0}


def commit(run_dir: Path, state: dict[str, Any], ready: int, save) -> None:
    """Save the state (`save()`) with the first `ready` lines of `state["log"]` as its `log_next`,
    then append them to the log; the others wait in `state["log"]` for a later commit."""
    state["log_next"], state["log"] = state["log"][:ready], state["log"][ready:]
    save()
    _append_next(run_dir, state)


def append(run_dir: Path, lines: list[dict[str, Any]]) -> None:
    """Append lines no state records (the `best` line: a resumed search cuts it and writes it anew)."""
    _write(run_dir / LOG, lines)


def reconcile(run_dir: Path, state: dict[str, Any]) -> None:
    """Make the log the one `state` describes: cut back to the `log_bytes` it covers (dropping a
    torn line, or lines written after it was saved), then `log_next` appended again. A log shorter
    than that, or whose covered part does not end a line, is another search's or was cut: a
    CheckpointError, and the log is left as it is."""
    path, covered = run_dir / LOG, state["log_bytes"]
    size = path.stat().st_size if path.is_file() else 0
    if size < covered or (covered and _byte(path, covered - 1) != b"\n"):
        raise CheckpointError(
            f"{path} does not hold the {covered} bytes its search's state covers "
            f"({size} bytes{'' if size < covered else ', the last not ending a line'}): "
            "it was cut or replaced, so the search cannot resume exactly"
        )
    if size > covered:
        os.truncate(path, covered)  # made durable by the append's fsync
    _append_next(run_dir, state)


def in_member_order(waiting: list[dict[str, Any]], training: list[int] | None) -> int:
    """Put the round's lines not logged yet (`waiting`, each naming its member) in member order;
    return how many can be logged now: those of members below every member still `training`
    (a method hands its jobs out in member order, so a job not handed out yet comes after them
    all). `training` None: not known (a state of format 2 stopped halfway): none before the
    round's end."""
    waiting.sort(key=lambda line: line["member"])
    if training is None:
        return 0
    lowest = min(training, default=math.inf)
    return sum(line["member"] < lowest for line in waiting)


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    """The log's lines as written so far (for a search's finish: its pictures, its lineage, why it
    has no winner), read once."""
    path = run_dir / LOG
    return [strict_json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def upgrade(state: dict[str, Any]) -> None:
    """A state of format 2 held the whole log in `state["log"]`, the file being rewritten from it:
    its lines become `log_next` over an empty log (written once more by `reconcile`), but those of
    a round it stopped in halfway, which were kept in the order they finished and wait for the
    round's end to be put in member order (`partial["open"]` None: which members were in training
    is not known)."""
    lines, partial = state.pop("log"), state.get("partial")
    first = partial.pop("first") if partial else len(lines)
    state.update(log_bytes=0, log_next=lines[:first], log=lines[first:])
    if partial:
        partial["open"] = None


def _byte(path: Path, offset: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(1)


def _append_next(run_dir: Path, state: dict[str, Any]) -> None:
    state["log_bytes"] = _write(run_dir / LOG, state["log_next"])
    state["log_next"] = []


def _write(path: Path, lines: list[dict[str, Any]]) -> int:
    """Append `lines` in one write() (which a kill does not cut short, so a reader of a killed
    search's log finds whole lines), fsync'd; the log's length after them."""
    data = memoryview("".join(strict_json.dumps(line) + "\n" for line in lines).encode())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            while data:  # a write may take less than it is given (a signal, a full disk)
                data = data[os.write(fd, data) :]
            os.fsync(fd)
            return os.fstat(fd).st_size
        finally:
            os.close(fd)
    except OSError as e:  # a failed write names no file; the message should
        raise OSError(e.errno, e.strerror, str(path)) from e
