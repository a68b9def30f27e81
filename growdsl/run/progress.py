"""The live progress bars: epoch, steps, loss, accuracy and parameter count while training, and
the files counted while a data set is read (an image folder scanned, its images decoded).

They are shown only to a person watching: off with `quiet` and whenever stdout is not a terminal
(pipes, CI logs, tests), where a redrawn bar would only be noise.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress


def progress_enabled(quiet: bool) -> bool:
    return not quiet and sys.stdout.isatty()


class TrainingProgress:
    """A context manager around a rich bar; every method does nothing when the bar is off."""

    def __init__(self, enabled: bool, epochs: int, steps_per_epoch: int) -> None:
        self.enabled = enabled
        self.epochs = epochs
        self._bar: Progress | None = None
        self._task = None
        self._steps = steps_per_epoch
        self._acc: float | None = None
        self._params = 0

    def __enter__(self) -> TrainingProgress:
        if self.enabled:
            # imported here: `growdsl check` imports this module and never shows a bar
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[metrics]}"),
                TimeRemainingColumn(),
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=self._steps, metrics="")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, error, tb)

    def start_epoch(self, epoch: int, steps: int, params: int) -> None:
        self._params = params
        if self._bar is not None:
            self._bar.reset(self._task, total=steps, description=f"epoch {epoch}/{self.epochs}")

    def step(self, loss: float | None = None) -> None:
        """One optimizer step; `loss` (a float, so the caller decides when to sync) when known."""
        if self._bar is None:
            return
        if loss is None:
            self._bar.advance(self._task)
        else:
            self._bar.update(self._task, advance=1, metrics=self._metrics(loss))

    def end_epoch(self, loss: float, acc: float | None) -> None:
        self._acc = acc
        if self._bar is not None:
            self._bar.update(self._task, metrics=self._metrics(loss))

    def _metrics(self, loss: float) -> str:
        acc = f"  acc {self._acc:.3f}" if self._acc is not None else ""
        return f"loss {loss:.4f}{acc}  params {self._params:,}"


def notice(enabled: bool, text: str) -> None:
    """A line between two progress bars (a rollback), shown when the bar is."""
    if enabled:
        from rich.console import Console  # as in TrainingProgress: not for `growdsl check`

        Console().print(f"[yellow]{text}[/yellow]")


_reading_shown: ContextVar[bool] = ContextVar("reading_shown", default=False)
REDRAW_SECONDS = 0.1  # a counter's bar is moved at most this often (a scan counts every file)


@contextmanager
def reading_progress(enabled: bool) -> Iterator[None]:
    """Within this block, reading a data set shows its progress (`counting`) when `enabled`: set
    where a run loads its data (from `--quiet` and the terminal, `progress_enabled`), so the
    readers deep inside the data sets need no flag of their own."""
    token = _reading_shown.set(enabled)
    try:
        yield
    finally:
        _reading_shown.reset(token)


@contextmanager
def counting(description: str, unit: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A bar for a slow read, shown inside `reading_progress(True)` (else nothing is drawn):
    yields `advance(n)`, called as `n` more `unit`s are done; without a `total` it counts them."""
    if not _reading_shown.get():
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    name = TextColumn("{task.description}", style="bold", markup=False)  # a path may hold [ and ]
    done = [BarColumn(), MofNCompleteColumn()] if total is not None else [TextColumn("{task.completed:,.0f}")]
    # redrawn by `advance`, not by a thread of rich's: the image readers fork worker processes
    bar = Progress(name, *done, TextColumn(unit), TimeElapsedColumn(), auto_refresh=False)
    with bar:
        task = bar.add_task(description, total=total)
        pending, drawn = 0, time.monotonic()

        def advance(n: int) -> None:
            nonlocal pending, drawn
            pending += n
            if time.monotonic() - drawn >= REDRAW_SECONDS:
                bar.update(task, advance=pending, refresh=True)
                pending, drawn = 0, time.monotonic()

        try:
            yield advance
        finally:
            bar.update(task, advance=pending, refresh=True)
