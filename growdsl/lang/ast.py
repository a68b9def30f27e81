"""The `Spec`: a `.grow` file as frozen dataclasses, each node keeping its source span.

This is the only thing the parser hands on; no lark tree leaks past `growdsl.lang`.
Spans are excluded from equality (`compare=False`), so two specs that differ only in layout
compare equal; that is what `fmt`'s round-trip test relies on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from growdsl.errors import Span

_NO_SPAN = Span("<none>", 0, 0)


def _span() -> Span:
    return field(default=_NO_SPAN, compare=False, repr=False)


# ---------------------------------------------------------------- values


@dataclass(frozen=True)
class Num:
    """A number. `text` keeps how it was written (`20k`, `1e-3`) so `fmt` can print it back."""

    value: int | float
    text: str
    span: Span = _span()


@dataclass(frozen=True)
class Str:
    value: str
    span: Span = _span()


@dataclass(frozen=True)
class Name:
    """An identifier used as a value: `relu`, `max`, `classes`, or a block parameter."""

    id: str
    span: Span = _span()


@dataclass(frozen=True)
class ListValue:
    items: tuple[Value, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Range:
    """`lo..hi`: a growable size that starts at `lo`."""

    lo: Value
    hi: Value
    span: Span = _span()


@dataclass(frozen=True)
class SetValue:
    """`{3, 5, 7}`: the search picks one; without a search the first is taken."""

    items: tuple[Value, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Arg:
    """One argument of a call: positional when `key` is None."""

    key: str | None
    value: Value
    span: Span = _span()


@dataclass(frozen=True)
class Call:
    """`name(args)`; also a bare `name` where a call is allowed (then `args` is empty)."""

    name: str
    args: tuple[Arg, ...] = ()
    span: Span = _span()

    @property
    def positional(self) -> tuple[Value, ...]:
        return tuple(a.value for a in self.args if a.key is None)

    @property
    def keywords(self) -> dict[str, Value]:
        return {a.key: a.value for a in self.args if a.key is not None}


@dataclass(frozen=True)
class Compare:
    """`params <= 200k` as a value: a bound on a metric (a search's `where:` constraint); `op` is
    one of `>`, `<`, `>=`, `<=`."""

    metric: str
    op: str
    bound: Num
    span: Span = _span()


Value = Num | Str | Name | ListValue | Range | SetValue | Call | Compare


# ---------------------------------------------------------------- model terms


@dataclass(frozen=True)
class OpTerm:
    """An op (`linear(64)`, `relu`) or a use of a `block` (`res(32)`); lowering tells which."""

    call: Call
    label: str | None = None
    span: Span = _span()


@dataclass(frozen=True)
class SeqTerm:
    """A nested `{ ... }` sequence, also the body of a model, a path and a repeat."""

    terms: tuple[Term, ...]
    label: str | None = None
    span: Span = _span()


MERGES = ("add", "concat", "mean")
"""How a branch's paths are combined: the language's whole vocabulary, checked when a spec is read
and again when an AST built in code is lowered."""


@dataclass(frozen=True)
class BranchTerm:
    """`branch add|concat|mean { path | path ... }`."""

    merge: str
    paths: tuple[SeqTerm, ...]
    label: str | None = None
    span: Span = _span()
    merge_span: Span = _span()


@dataclass(frozen=True)
class RepeatTerm:
    """`repeat N { ... }` or `repeat lo..hi { ... }` (a growable depth)."""

    count: Num | Range | Name
    body: SeqTerm
    label: str | None = None
    span: Span = _span()


@dataclass(frozen=True)
class ChoiceTerm:
    """`choice { path | path ... }`: the search picks one path."""

    paths: tuple[SeqTerm, ...]
    label: str | None = None
    span: Span = _span()


Term = OpTerm | SeqTerm | BranchTerm | RepeatTerm | ChoiceTerm


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Param:
    """A block parameter, with an optional default (`block res(c, k: 3)`)."""

    name: str
    default: Value | None = None
    span: Span = _span()


@dataclass(frozen=True)
class BlockDef:
    name: str
    params: tuple[Param, ...]
    body: SeqTerm
    span: Span = _span()


@dataclass(frozen=True)
class ModelDecl:
    """`model NAME(input: [...]) { ... }`; `options` holds `input` where given."""

    name: str
    options: tuple[Arg, ...]
    body: SeqTerm
    span: Span = _span()


@dataclass(frozen=True)
class Setting:
    """One `train` statement: a name and exactly one value (`epochs 30`)."""

    name: str
    value: Value
    span: Span = _span()


@dataclass(frozen=True)
class TrainBlock:
    settings: tuple[Setting, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Every:
    """`every N epochs`."""

    epochs: Num
    span: Span = _span()


@dataclass(frozen=True)
class AtEpochs:
    """`at epochs [5, 10, 20]`."""

    epochs: ListValue
    span: Span = _span()


@dataclass(frozen=True)
class When:
    """`when plateau(patience: 3)`."""

    trigger: Call
    span: Span = _span()


BUDGET_METRICS = ("params", "flops", "steps")
"""What an `until` budget may cap."""


@dataclass(frozen=True)
class Until:
    """`until params > 20k`: a budget; `op` is one of `>`, `<`, `>=`, `<=`."""

    metric: str
    op: str
    value: Num
    span: Span = _span()


@dataclass(frozen=True)
class TransformStmt:
    """A transform in a `grow` block: `split(frac: 0.25)`."""

    call: Call
    span: Span = _span()


GrowStmt = Every | AtEpochs | When | Until | TransformStmt


@dataclass(frozen=True)
class GrowBlock:
    statements: tuple[GrowStmt, ...]
    span: Span = _span()


@dataclass(frozen=True)
class SearchDecl:
    method: Call
    span: Span = _span()


@dataclass(frozen=True)
class ExportDecl:
    formats: tuple[Name, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Spec:
    """A whole `.grow` file. Sections may come in any order; each appears at most once,
    except `block` definitions. `data` defaults to `digits` when absent."""

    file: str = field(compare=False)
    model: ModelDecl = None  # type: ignore[assignment]  # always set by the parser
    data: Call | None = None
    blocks: tuple[BlockDef, ...] = ()
    train: TrainBlock | None = None
    grow: GrowBlock | None = None
    search: SearchDecl | None = None
    export: ExportDecl | None = None
