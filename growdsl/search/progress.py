"""The live table of a population search: each member's id, architecture, epoch and fitness.

Shown only to a person watching (off with `--quiet` and when stdout is not a terminal), redrawn as
members start and finish their rounds. A round of thousands of trials keeps the table short: the
members in training and the last `ROWS` finished are shown, the others counted in its caption.
"""

from __future__ import annotations

import math
from types import TracebackType

from rich.live import Live
from rich.table import Table

ROWS = 40  # finished members shown at most (those in training are always shown)


class SearchProgress:
    """A context manager around a rich live table; every method does nothing when it is off."""

    def __init__(self, enabled: bool, legs: int) -> None:
        self.enabled, self.legs = enabled, legs
        self._live: Live | None = None
        self._leg = 0
        self._rows: dict[int, list[str]] = {}
        self._last: dict[int, list[str]] = {}  # the rows of the round before
        self._hidden = 0  # finished members of this round no longer shown

    def __enter__(self) -> SearchProgress:
        if self.enabled:
            self._live = Live(self._table(), refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(kind, error, tb)

    def start_round(self, leg: int) -> None:
        """A new round: the rows fill as its jobs start (`job_started`)."""
        self._leg, self._last, self._rows, self._hidden = leg, self._rows, {}, 0
        self._refresh()

    def job_started(self, member: int, summary: str) -> None:
        """A member starts training: its architecture, and the fitness it had (a member trained
        again keeps its row's last fitness until it is done)."""
        if not self.enabled:  # no rows kept for a table no one sees
            return
        self._rows[member] = [summary, "training", self._last.get(member, ["", "-", "-"])[2]]
        self._refresh()

    def member_done(self, member: int, epoch: int, fitness: float) -> None:
        if member in self._rows:
            self._rows[member][1:] = [str(epoch), f"{fitness:.4f}" if math.isfinite(fitness) else "failed"]
            finished = [m for m, row in self._rows.items() if row[1] != "training"]  # oldest first
            for old in finished[: max(0, len(finished) - ROWS)]:
                del self._rows[old]
                self._hidden += 1
        self._refresh()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._table())

    def _table(self) -> Table:
        caption = f"and {self._hidden:,} more finished" if self._hidden else None
        table = Table(title=f"leg {self._leg}/{self.legs}", caption=caption)
        for column in ("member", "architecture", "epoch", "fitness (val)"):
            table.add_column(column)
        for member, (arch, epoch, fitness) in self._rows.items():
            table.add_row(str(member), arch, epoch, fitness)
        return table
