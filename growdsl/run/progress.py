"""The live progress bar: epoch, steps, loss, accuracy and parameter count while training.

It is shown only to a person watching: off with `quiet` and whenever stdout is not a terminal
(pipes, CI logs, tests), where a redrawn bar would only be noise.
"""

from __future__ import annotations

import sys
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
