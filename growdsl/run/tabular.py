"""`csv(path: "...", target: "label")`: a table of numeric feature columns and one target column.

Classes are the target's distinct values (sorted numerically when they are all numbers, else as
text); with `regression: true` the target is a number to fit with `loss mse`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from growdsl.errors import DataError
from growdsl.lazy import np

Row = tuple[int, list[str]]  # (line number in the file, fields)


def _read(path: str) -> tuple[list[str], list[Row]]:
    """The header and the non-blank rows, each with the csv reader's own line number (blank lines
    and quoted line breaks count), read as UTF-8 with an optional BOM (Excel writes one)."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"csv file {file} does not exist")
    try:
        with file.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            rows = [(reader.line_num, row) for row in reader if row]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read csv file {file}: {e}") from e
    if len(rows) < 2:
        raise DataError(f"csv file {file} needs a header line and at least one row")
    header = [h.strip() for h in rows[0][1]]
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise DataError(f"{file}:{line}: {len(row)} fields, but the header has {len(header)}")
    return header, rows[1:]


def _table(path: str, target: str) -> tuple[list[str], list[Row], int]:
    """The header, the rows and the target's column; DataError when the target is missing or is
    the only column (a model needs at least one feature)."""
    header, rows = _read(path)
    if target not in header:
        from growdsl.lang.suggest import did_you_mean

        guess = did_you_mean(target, header)
        raise DataError(
            f"csv file {path} has no target column '{target}'"
            + (f": did you mean '{guess}'?" if guess else f" (columns: {', '.join(header)})")
        )
    if len(header) < 2:
        raise DataError(f"csv file {path} has no feature column, only the target '{target}'")
    return header, rows, header.index(target)


def _sorted_labels(values: list[str]) -> list[str]:
    try:
        return sorted(set(values), key=float)
    except ValueError:
        return sorted(set(values))


CHECKED_ROWS = 100  # rows whose types `check` verifies (it reads the table, but converts only these)


def csv_info(path: str, target: str, regression: bool) -> tuple[int, int | None]:
    """(number of feature columns, number of classes or None) without converting the table; the
    first CHECKED_ROWS rows are converted, so `check` catches a text column before a run starts."""
    header, rows, t = _table(path, target)
    features = [i for i in range(len(header)) if i != t]
    for line, row in rows[:CHECKED_ROWS]:
        _features(path, header, features, line, row)
        if regression:
            _regression_target(path, target, line, row[t])
    classes = None if regression else len({row[t].strip() for _, row in rows})
    return len(features), classes


def load_csv(path: str, target: str, regression: bool) -> tuple[np.ndarray, np.ndarray]:
    """(x [n, features] float32, y) with y class indices, or float targets [n, 1] for regression.
    Features (and regression targets) must be finite numbers: a nan or inf would make every loss
    nan."""
    header, rows, t = _table(path, target)
    features = [i for i in range(len(header)) if i != t]
    x = np.empty((len(rows), len(features)), dtype=np.float32)
    for r, (line, row) in enumerate(rows):
        x[r] = _features(path, header, features, line, row)
    targets = [row[t].strip() for _, row in rows]
    if regression:
        y = np.array(
            [[_regression_target(path, target, line, row[t])] for line, row in rows], dtype=np.float32
        )
        return x, y
    index = {label: i for i, label in enumerate(_sorted_labels(targets))}
    return x, np.array([index[v] for v in targets], dtype=np.int64)


def _features(path: str, header: list[str], features: list[int], line: int, row: list[str]) -> np.ndarray:
    """One row's feature values as float32; DataError at `path:line` for text, nan or inf."""
    try:
        values = np.array([float(row[i]) for i in features], dtype=np.float32)
    except ValueError as e:
        raise DataError(f"{path}:{line}: feature columns must be numeric ({e})") from e
    if not np.isfinite(values).all():
        column = header[features[int(np.argmin(np.isfinite(values)))]]
        raise DataError(f"{path}:{line}: feature '{column}' is not a finite number")
    return values


def _regression_target(path: str, target: str, line: int, text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError as e:
        raise DataError(f"{path}:{line}: regression target '{target}' must be numeric ({e})") from e
    if not np.isfinite(np.float32(value)):
        raise DataError(f"{path}:{line}: regression target '{target}' is not a finite number")
    return value
