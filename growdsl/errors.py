"""The one error family of growdsl.

Every user mistake is raised deep inside as a `GrowDSLError` subclass and rendered once, by the
CLI, as a message with the error's `exit_code` (2 for a mistake; 3 for a run that diverged, see
docs/cli.md). Nothing below the CLI prints errors or exits.
"""

from __future__ import annotations

from dataclasses import dataclass

_SOURCES: dict[str, str] = {}


def register_source(file: str, text: str) -> None:
    """Remember a spec's text so an error can quote the offending line."""
    _SOURCES[file] = text


def source_line(file: str, line: int) -> str | None:
    text = _SOURCES.get(file)
    if text is None:
        return None
    lines = text.split("\n")  # as lark counts lines: a form feed or U+2028 is not a line break
    return lines[line - 1] if 0 < line <= len(lines) else None


@dataclass(frozen=True)
class Span:
    """Where something stands in a spec: 1-based line and column of its first character."""

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class GrowDSLError(Exception):
    """Base of every error a user can cause; the CLI renders it and exits with code 2."""

    exit_code = 2

    def render(self) -> str:
        return f"error: {self}"


class SpecError(GrowDSLError):
    """A mistake in a `.grow` spec, rendered as `file:line:col: message`, the line and a caret."""

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        *,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.expected = expected
        self.hint = hint

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        return f"{where}{self.message}"

    def render(self) -> str:
        out = [f"{self}"]
        if self.span is not None:
            text = source_line(self.span.file, self.span.line)
            if text is not None:
                gutter = f"{self.span.line:>4} | "
                out.append(gutter + text)
                caret_pos = len(gutter) + len(text[: self.span.col - 1].expandtabs(1))
                width = 1
                if self.span.end_line == self.span.line and self.span.end_col:
                    width = max(1, self.span.end_col - self.span.col)
                out.append(" " * caret_pos + "^" * width)
        if self.expected:
            out.append(f"expected {self.expected}")
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)


class ShapeError(SpecError):
    """Shapes that disagree; the message names the node and both shapes."""


class DataError(GrowDSLError):
    """A data set that cannot be loaded: missing files, a bad csv, an unknown target column."""


class RunError(GrowDSLError):
    """A run that cannot start or continue: an output folder in the way, a bad device."""


class CheckpointError(GrowDSLError):
    """A checkpoint that is missing, corrupt or from an incompatible run."""


class PluginError(GrowDSLError):
    """A plugin that cannot be loaded (no such module or file, an error while importing it) or
    that registers something wrongly (a taken name, an inconsistent op); docs/plugins.md."""


class MissingDependencyError(GrowDSLError):
    """An optional package a feature needs is not installed; the message names the pip extra."""

    def __init__(self, feature: str, extra: str, missing: str) -> None:
        super().__init__(f"{feature} needs the '{missing}' package: pip install 'growdsl[{extra}]'")
        self.missing = missing


class DivergenceError(GrowDSLError):
    """Training diverged: an epoch's mean training loss is NaN or infinite. Not a mistake in the
    spec's form but in its numbers (most often the learning rate), so it has its own exit code:
    a script can tell it from a refused spec. The run stops; `kept_epoch` is the epoch whose
    state (the last checkpoint before the divergence) the run directory holds."""

    exit_code = 3

    def __init__(self, epoch: int, loss: float, kept_epoch: int | None = None, run_dir: str | None = None):
        super().__init__(epoch, loss)
        self.epoch, self.loss, self.kept_epoch, self.run_dir = epoch, loss, kept_epoch, run_dir

    def __str__(self) -> str:
        out = f"training diverged in epoch {self.epoch}: the mean training loss is {self.loss}"
        if self.run_dir is not None:
            out += (
                f"; the run stopped, and {self.run_dir} holds the state after epoch {self.kept_epoch} "
                "(model.pt, final.grow, graph.json, report)"
            )
        return out

    def render(self) -> str:
        return f"error: {self}\nhint: lower the learning rate (the optimizer's `lr` in the train block)"


class SearchDivergedError(GrowDSLError):
    """Every member of a search diverged: the search has no result, for the reason a diverged run
    has none, so it exits with a diverged run's code (3), not a refused spec's (2)."""

    exit_code = 3

    def render(self) -> str:
        return f"error: {self}\nhint: lower the learning rate (the optimizer's `lr` in the train block)"
