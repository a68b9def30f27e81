"""Task sequences: `data digits(tasks: split(5))` turns one classification set into a sequence of
tasks for continual learning.

`split(n)` cuts the classes, in class order, into `n` tasks of equal size (digits: {0, 1},
{2, 3}, ...). A task's labels are renumbered from 0 (class `c` of task `t` is label
`c - first class of t`), so a task's head is a contiguous slice of the last layer's outputs:
`head(t)`. This module is pure data handling; `datasets.load_tasks` loads the splits with it and
`growdsl.run.continual` trains on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from growdsl.errors import DataError, Span, SpecError
from growdsl.lang.ast import Call, Value
from growdsl.lang.suggest import unknown_name_message
from growdsl.lazy import torch
from growdsl.options import BadValue, integer, read_value

SCHEMES = ("split",)
Pair = tuple["torch.Tensor", "torch.Tensor"]


@dataclass(frozen=True)
class TaskScheme:
    """`split(count)`: `count` tasks of consecutive classes; `span` for errors found later (when
    the number of classes is known)."""

    count: int
    span: Span | None = None

    def groups(self, classes: int) -> list[list[int]]:
        """The classes of each task, in class order."""
        size = classes // self.count
        return [list(range(t * size, (t + 1) * size)) for t in range(self.count)]

    def check(self, classes: int | None) -> None:
        """SpecError at the scheme when the data set's classes do not divide into the tasks, or
        leave a task fewer than 2 classes (a one-class head has zero loss and accuracy 1)."""
        if classes is None:
            raise SpecError(
                "tasks need a classification data set, but this one is a regression task", self.span
            )
        if classes < self.count or classes % self.count:
            raise SpecError(
                f"{classes} classes do not split into {self.count} tasks of equal size",
                self.span,
                expected="split(N) with N dividing " + str(classes),
            )
        if classes // self.count < 2:
            raise SpecError(
                f"{classes} classes in {self.count} tasks leave a task fewer than 2 classes, "
                "so it has nothing to learn",
                self.span,
                expected=f"split(N) with N <= {classes // 2}, dividing {classes}",
            )


def task_scheme(value: Value) -> TaskScheme:
    """The check of the `tasks` data option: `split(N)`, N >= 2 (did-you-mean for other names)."""
    if not isinstance(value, Call):
        raise BadValue("split(N), as in tasks: split(5)")
    if value.name not in SCHEMES:
        raise SpecError(unknown_name_message("task scheme", value.name, SCHEMES), value.span)
    if len(value.args) != 1 or value.args[0].key is not None:
        raise SpecError("split takes one number, the number of tasks", value.span, expected="split(5)")
    count = read_value(value.args[0].value, integer(2), "the number of tasks")
    return TaskScheme(count, value.span)


def head(classes: list[int]) -> tuple[int, int]:
    """The output columns `[lo, hi)` of a task's head."""
    return classes[0], classes[-1] + 1


def select(pair: Pair, classes: list[int]) -> Pair:
    """The rows of `pair` whose class is one of `classes`, labels renumbered from 0."""
    x, y = pair
    rows = torch.isin(y, torch.tensor(classes, dtype=y.dtype))
    if not bool(rows.any()):
        raise DataError(f"the task of classes {classes} has no samples")
    return x[rows], y[rows] - classes[0]
