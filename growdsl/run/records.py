"""A run folder's JSON files read back (`history.jsonl`, `graph.json`, `metrics.json`), checked
against what growdsl writes.

These files are on disk, where a full disk cuts a line short and a person can edit anything;
`history`, `report`, `compare` and `export` read them. So what is read is checked before it is
used, and a mismatch is a RunError naming `FILE:LINE:` (`FILE:` for a whole-file JSON), never a
traceback, and never a silently different result (`"added": "abc"` would widen a layer by three).

Semantics, exactly:

- `history.jsonl`: every line is UTF-8, strict JSON (no `NaN`), an object with a string `event`;
  the fields the readers use have the types of `FIELDS` (a missing optional field is fine, an
  event growdsl does not know is kept as it is); a logged `edit` parses as an edit
  (`growdsl.ir.edits.edit_from_json`, every field's type checked). The one exception: a last line
  that has no newline and does not parse is a write cut short (a kill or a full disk during an
  append; every line growdsl writes ends with a newline), so it was never written, and is left
  out, as `resume` leaves it out when it rewrites the history from the checkpoint.
- `graph.json`: node-link JSON of a tree (`growdsl.ir.graph.check_node_link`).
- `metrics.json`: an object whose counts are integers and whose accuracy and loss are numbers
  (or null: a diverged value, strict JSON).
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from growdsl import strict_json
from growdsl.errors import RunError
from growdsl.ir import ArchGraph, GraphFormatError, from_json
from growdsl.ir.edits import EditError, edit_from_json

Check = Callable[[Any], bool]


def integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def number_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def string(value: Any) -> bool:
    return isinstance(value, str)


def seconds(value: Any) -> bool:
    """A timing record: `{"train": 1.2, "exploit": 0.0}`."""
    return isinstance(value, dict) and all(number_or_null(v) for v in value.values())


def _edit(value: Any) -> bool:
    edit_from_json(value)  # an EditError says what is wrong with it
    return True


_NAMES = {
    integer: "an integer",
    number_or_null: "a number or null",
    string: "a string",
    seconds: "an object of seconds",
    _edit: "an edit",
}

# event -> field -> (its check, whether every line of that event has it)
FIELDS: dict[str, dict[str, tuple[Check, bool]]] = {
    "epoch": {
        "epoch": (integer, True),
        "loss": (number_or_null, True),
        "params": (integer, True),
        "acc": (number_or_null, False),
        "held_out_loss": (number_or_null, False),
        "flops": (integer, False),
        "time": (number_or_null, False),
    },
    "grow": {
        "epoch": (integer, True),
        "transform": (string, True),
        "params_before": (integer, True),
        "params_after": (integer, True),
        "node": (string, False),
        "score": (number_or_null, False),
        "delta_out": (number_or_null, False),
        "edit": (_edit, False),  # a history written before edits were logged has none
    },
    "grow_skipped": {"epoch": (integer, True), "transform": (string, True), "reason": (string, False)},
    "sample": {"epoch": (integer, True), "edit": (_edit, True)},
    "mix": {"epoch": (integer, True), "edit": (_edit, True)},
    "pathlevel": {"epoch": (integer, True), "edit": (_edit, True)},
    "rollback": {"epoch": (integer, True)},
    "diverged": {"epoch": (integer, True), "kept_epoch": (integer, False)},
    "task": {"epoch": (integer, True), "task": (integer, True)},
}
METRICS_FIELDS: dict[str, tuple[Check, bool]] = {
    "epochs": (integer, False),
    "params": (integer, False),
    "flops": (integer, False),
    "test_acc": (number_or_null, False),
    "test_loss": (number_or_null, False),
}


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of `run_dir/history.jsonl`, each checked (see the module's docstring); [] when
    the folder has no history."""
    return read_json_lines(Path(run_dir) / "history.jsonl", FIELDS)


def read_json_lines(path: Path, fields: dict[str, dict[str, tuple[Check, bool]]]) -> list[dict[str, Any]]:
    """The records of a JSON-lines file growdsl wrote (a history, a search's log), each an object
    with an `event` whose fields are checked against `fields[event]`; [] when there is no file."""
    if not path.exists():
        return []
    try:
        data = path.read_bytes()
    except OSError as e:  # a folder in its place, no permission
        raise RunError(f"{path}: cannot be read: {e.strerror or e}") from None
    lines = data.split(b"\n")
    records = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            records.append(_record(raw, f"{path}:{number}", fields))
        except RunError:
            if number == len(lines) and not data.endswith(b"\n"):
                continue  # the last line, cut short: never written (see the docstring)
            raise
    return records


def _record(raw: bytes, where: str, fields: dict[str, dict[str, tuple[Check, bool]]]) -> dict[str, Any]:
    record = _parse(raw, where)
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        raise RunError(f"{where}: not a history record (a JSON object with an event): {reprlib.repr(record)}")
    try:
        check_fields(record, fields.get(record["event"], {}), f"{record['event']} line")
    except (ValueError, EditError) as e:
        raise RunError(f"{where}: {e}") from None
    return record


def _parse(raw: bytes, where: str) -> Any:
    try:
        return strict_json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RunError(f"{where}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except ValueError as e:
        raise RunError(f"{where}: not JSON ({e})") from None


def check_fields(record: dict[str, Any], fields: dict[str, tuple[Check, bool]], what: str) -> None:
    """A ValueError (or EditError, for an edit) naming the first field of `record` that is missing
    though required, or has the wrong type."""
    for name, (check, required) in fields.items():
        if name not in record:
            if required:
                raise ValueError(f"{what} without {name}")
        elif not check(record[name]):
            raise ValueError(f"{what}: {name} must be {_NAMES[check]}, not {reprlib.repr(record[name])}")


def read_json_object(path: Path) -> dict[str, Any]:
    """A whole-file JSON object (`metrics.json`, `graph.json`), or a RunError naming the file."""
    try:
        value = _parse(path.read_bytes(), str(path))
    except OSError as e:
        raise RunError(f"{path}: cannot be read: {e.strerror or e}") from None
    if not isinstance(value, dict):
        raise RunError(f"{path}: not a JSON object but {reprlib.repr(value)}")
    return value


def read_graph(path: Path) -> ArchGraph:
    """The graph of a `graph.json`, its shape checked."""
    try:
        return from_json(read_json_object(path))
    except GraphFormatError as e:
        raise RunError(f"{path}: not a growdsl graph: {e}") from None


def read_metrics(path: Path) -> dict[str, Any]:
    """The final metrics of a `metrics.json`, the fields the readers use checked."""
    metrics = read_json_object(path)
    try:
        check_fields(metrics, METRICS_FIELDS, "metrics")
    except ValueError as e:
        raise RunError(f"{path}: {e}") from None
    return metrics


__all__ = [
    "FIELDS",
    "check_fields",
    "read_graph",
    "read_history",
    "read_json_lines",
    "read_json_object",
    "read_metrics",
]
