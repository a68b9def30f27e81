"""`csv(path: "...", target: "label")`: a table of numeric feature columns and one target column.

Classes are the target's distinct values (sorted numerically when they are all numbers, else as
text); with `regression: true` the target is a number to fit with `loss mse`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from growdsl.errors import DataError


def _read(path: str) -> tuple[list[str], list[list[str]]]:
    file = Path(path)
    if not file.is_file():
        raise DataError(f"csv file {file} does not exist")
    try:
        with file.open(newline="") as f:
            rows = [row for row in csv.reader(f) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read csv file {file}: {e}") from e
    if len(rows) < 2:
        raise DataError(f"csv file {file} needs a header line and at least one row")
    header = [h.strip() for h in rows[0]]
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{file}:{i}: {len(row)} fields, but the header has {len(header)}")
    return header, rows[1:]


def _target_index(header: list[str], target: str, path: str) -> int:
    if target not in header:
        from growdsl.lang.suggest import did_you_mean

        guess = did_you_mean(target, header)
        raise DataError(
            f"csv file {path} has no target column '{target}'"
            + (f": did you mean '{guess}'?" if guess else f" (columns: {', '.join(header)})")
        )
    return header.index(target)


def _sorted_labels(values: list[str]) -> list[str]:
    try:
        return sorted(set(values), key=float)
    except ValueError:
        return sorted(set(values))


def csv_info(path: str, target: str, regression: bool) -> tuple[int, int | None]:
    """(number of feature columns, number of classes or None) without converting the table."""
    header, rows = _read(path)
    t = _target_index(header, target, path)
    classes = None if regression else len({row[t].strip() for row in rows})
    return len(header) - 1, classes


def load_csv(path: str, target: str, regression: bool) -> tuple[np.ndarray, np.ndarray]:
    """(x [n, features] float32, y) with y class indices, or float targets [n, 1] for regression."""
    header, rows = _read(path)
    t = _target_index(header, target, path)
    features = [i for i in range(len(header)) if i != t]
    try:
        x = np.array([[float(row[i]) for i in features] for row in rows], dtype=np.float32)
    except ValueError as e:
        raise DataError(f"csv file {path}: feature columns must be numeric ({e})") from e
    targets = [row[t].strip() for row in rows]
    if regression:
        try:
            return x, np.array(targets, dtype=np.float32).reshape(-1, 1)
        except ValueError as e:
            raise DataError(f"csv file {path}: regression target '{target}' must be numeric ({e})") from e
    index = {label: i for i, label in enumerate(_sorted_labels(targets))}
    return x, np.array([index[v] for v in targets], dtype=np.int64)
