"""Turns lark's parse tree into the frozen dataclasses of `ast.py`, one short method per rule.

Checks that need no more than the spec itself happen here, each as a `SpecError` with a span:
sections given twice, a block defined twice, a train setting given twice, a repeated argument,
an unknown merge or budget metric, a range whose low end is above its high end, a bad suffix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal

from lark import Token, Transformer, v_args
from lark.tree import Meta

from growdsl.errors import Span, SpecError
from growdsl.lang import ast
from growdsl.lang.suggest import unknown_name_message

SUFFIXES = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9}
_NUMBER = re.compile(r"(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)((?:[A-Za-z_][A-Za-z0-9_]*)?)")


@dataclass(frozen=True)
class _DataSection:
    """`data CALL`: wrapped so `start` can tell it from the other sections."""

    call: ast.Call
    span: Span


def number_value(text: str, span: Span) -> int | float:
    """`16` -> 16, `1e-3` -> 0.001, `1.5M` -> 1500000; a suffixed whole number is an int."""
    match = _NUMBER.fullmatch(text)
    assert match is not None, text  # the NUMBER token guarantees the shape
    digits, suffix = match.groups()
    if suffix not in SUFFIXES:
        at = Span(span.file, span.line, span.col + len(digits), span.line, span.col + len(text))
        raise SpecError(
            f"bad number suffix '{suffix}' in '{text}'",
            at,
            expected="k, M or G (x10^3, x10^6, x10^9) or no suffix",
        )
    if re.fullmatch(r"-?\d+", digits):
        return int(digits) * SUFFIXES[suffix]
    if not suffix:
        return float(digits)
    scaled = Decimal(digits) * SUFFIXES[suffix]  # Decimal: `1.1k` is exactly 1100
    return int(scaled) if scaled == scaled.to_integral_value() else float(scaled)


def unescape(body: str) -> str:
    """The text of a string literal without its quotes; only `\\"`, `\\\\`, `\\n`, `\\t` escape."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), body)


@v_args(meta=True)
class SpecBuilder(Transformer):
    """Builds a `Spec` (rule `start`) or a `Value` (rule `value_start`) for one file."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    # ------------------------------------------------------------ spans

    def _span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.file, 0, 0)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok(self, tok: Token) -> Span:
        return Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column)

    # ------------------------------------------------------------ spec and sections

    def start(self, meta: Meta, sections: list) -> ast.Spec:
        found: dict[str, object] = {}
        blocks: dict[str, ast.BlockDef] = {}
        kinds = {
            ast.ModelDecl: "model",
            _DataSection: "data",
            ast.TrainBlock: "train",
            ast.GrowBlock: "grow",
            ast.SearchDecl: "search",
            ast.ExportDecl: "export",
        }
        for section in sections:
            if isinstance(section, ast.BlockDef):
                if section.name in blocks:
                    first = blocks[section.name].span.line
                    raise SpecError(
                        f"block '{section.name}' is defined twice (first at line {first})",
                        section.span,
                        hint="rename one of them",
                    )
                blocks[section.name] = section
                continue
            kind = kinds[type(section)]
            if kind in found:
                first = found[kind].span.line  # type: ignore[attr-defined]
                raise SpecError(
                    f"a second '{kind}' section (the first is at line {first})",
                    section.span,
                    hint=f"a spec has at most one '{kind}' section",
                )
            found[kind] = section
        if "model" not in found:
            raise SpecError(
                "this spec has no 'model' section",
                Span(self.file, 1, 1),
                expected="a model, e.g. `model net { flatten linear(classes) }`",
            )
        data = found.get("data")
        return ast.Spec(
            file=self.file,
            model=found["model"],  # type: ignore[arg-type]
            data=data.call if data is not None else None,  # type: ignore[attr-defined]
            blocks=tuple(blocks.values()),
            train=found.get("train"),  # type: ignore[arg-type]
            grow=found.get("grow"),  # type: ignore[arg-type]
            search=found.get("search"),  # type: ignore[arg-type]
            export=found.get("export"),  # type: ignore[arg-type]
        )

    def value_start(self, meta: Meta, children: list) -> ast.Value:
        return children[0]

    def model(self, meta: Meta, children: list) -> ast.ModelDecl:
        name, *options, body = children
        return ast.ModelDecl(str(name), options[0] if options else (), body, self._span(meta))

    def block(self, meta: Meta, children: list) -> ast.BlockDef:
        name, *params, body = children
        return ast.BlockDef(str(name), params[0] if params else (), body, self._span(meta))

    def params(self, meta: Meta, params: list[ast.Param]) -> tuple[ast.Param, ...]:
        seen: set[str] = set()
        for param in params:
            if param.name in seen:
                raise SpecError(f"parameter '{param.name}' is given twice", param.span)
            seen.add(param.name)
        return tuple(params)

    def param(self, meta: Meta, children: list) -> ast.Param:
        default = children[1] if len(children) > 1 else None
        return ast.Param(str(children[0]), default, self._span(meta))

    def data(self, meta: Meta, children: list) -> _DataSection:
        return _DataSection(children[0], self._span(meta))

    def search(self, meta: Meta, children: list) -> ast.SearchDecl:
        return ast.SearchDecl(children[0], self._span(meta))

    def export(self, meta: Meta, names: list[Token]) -> ast.ExportDecl:
        return ast.ExportDecl(tuple(ast.Name(str(n), self._tok(n)) for n in names), self._span(meta))

    def train(self, meta: Meta, settings: list[ast.Setting]) -> ast.TrainBlock:
        seen: dict[str, ast.Setting] = {}
        for setting in settings:
            if setting.name in seen:
                raise SpecError(
                    f"train setting '{setting.name}' is given twice "
                    f"(first at line {seen[setting.name].span.line})",
                    setting.span,
                )
            seen[setting.name] = setting
        return ast.TrainBlock(tuple(settings), self._span(meta))

    def setting(self, meta: Meta, children: list) -> ast.Setting:
        return ast.Setting(str(children[0]), children[1], self._span(meta))

    def grow(self, meta: Meta, statements: list) -> ast.GrowBlock:
        return ast.GrowBlock(tuple(statements), self._span(meta))

    def every(self, meta: Meta, children: list) -> ast.Every:
        return ast.Every(self._num(children[0]), self._span(meta))

    def at_epochs(self, meta: Meta, children: list) -> ast.AtEpochs:
        return ast.AtEpochs(children[0], self._span(meta))

    def when(self, meta: Meta, children: list) -> ast.When:
        return ast.When(children[0], self._span(meta))

    def until(self, meta: Meta, children: list) -> ast.Until:
        metric, op, value = children
        if str(metric) not in ast.BUDGET_METRICS:
            raise SpecError(
                unknown_name_message("budget metric", str(metric), ast.BUDGET_METRICS), self._tok(metric)
            )
        return ast.Until(str(metric), str(op), self._num(value), self._span(meta))

    def transform_stmt(self, meta: Meta, children: list) -> ast.TransformStmt:
        return ast.TransformStmt(children[0], self._span(meta))

    # ------------------------------------------------------------ model trees

    def seq(self, meta: Meta, terms: list) -> ast.SeqTerm:
        return ast.SeqTerm(tuple(terms), span=self._span(meta))

    path = seq

    def term(self, meta: Meta, children: list) -> ast.Term:
        if len(children) == 1:
            return children[0]
        return replace(children[0], label=children[1])

    def label(self, meta: Meta, children: list) -> str:
        return str(children[0])

    def op(self, meta: Meta, children: list) -> ast.OpTerm:
        return ast.OpTerm(children[0], span=self._span(meta))

    def branch(self, meta: Meta, children: list) -> ast.BranchTerm:
        merge, *paths = children
        if str(merge) not in ast.MERGES:
            raise SpecError(unknown_name_message("merge", str(merge), ast.MERGES), self._tok(merge))
        return ast.BranchTerm(str(merge), tuple(paths), span=self._span(meta), merge_span=self._tok(merge))

    def choice(self, meta: Meta, paths: list) -> ast.ChoiceTerm:
        return ast.ChoiceTerm(tuple(paths), span=self._span(meta))

    def repeat(self, meta: Meta, children: list) -> ast.RepeatTerm:
        return ast.RepeatTerm(children[0], children[1], span=self._span(meta))

    # ------------------------------------------------------------ values

    def number(self, meta: Meta, children: list) -> ast.Num:
        return self._num(children[0])

    def _num(self, tok: Token) -> ast.Num:
        span = self._tok(tok)
        return ast.Num(number_value(str(tok), span), str(tok), span)

    def string(self, meta: Meta, children: list) -> ast.Str:
        return ast.Str(unescape(str(children[0])[1:-1]), self._span(meta))

    def name(self, meta: Meta, children: list) -> ast.Name:
        return ast.Name(str(children[0]), self._span(meta))

    def indexed_name(self, meta: Meta, children: list) -> ast.Name:
        return ast.Name(f"{children[0]}:{children[1]}", self._span(meta))

    def list(self, meta: Meta, items: list) -> ast.ListValue:
        return ast.ListValue(tuple(items), self._span(meta))

    def set(self, meta: Meta, items: list) -> ast.SetValue:
        return ast.SetValue(tuple(items), self._span(meta))

    def range(self, meta: Meta, children: list) -> ast.Range:
        lo, hi = children
        span = self._span(meta)
        if isinstance(lo, ast.Num) and isinstance(hi, ast.Num) and lo.value > hi.value:
            raise SpecError(
                f"range {lo.text}..{hi.text} has its low end above its high end",
                span,
                hint=f"write {hi.text}..{lo.text}",
            )
        return ast.Range(lo, hi, span)

    def compare(self, meta: Meta, children: list) -> ast.Compare:
        metric, op, bound = children
        return ast.Compare(str(metric), str(op), self._num(bound), self._span(meta))

    def value_call(self, meta: Meta, children: list) -> ast.Call:
        return ast.Call(str(children[0]), children[1], self._span(meta))

    def call(self, meta: Meta, children: list) -> ast.Call:
        args = children[1] if len(children) > 1 else ()
        return ast.Call(str(children[0]), args, self._span(meta))

    def call_args(self, meta: Meta, args: list[ast.Arg]) -> tuple[ast.Arg, ...]:
        seen: set[str] = set()
        for arg in args:
            if arg.key is None and seen:
                raise SpecError("a positional argument after a keyword argument", arg.span)
            if arg.key is not None:
                if arg.key in seen:
                    raise SpecError(f"argument '{arg.key}' is given twice", arg.span)
                seen.add(arg.key)
        return tuple(args)

    def keyword_arg(self, meta: Meta, children: list) -> ast.Arg:
        return ast.Arg(str(children[0]), children[1], self._span(meta))

    def positional_arg(self, meta: Meta, children: list) -> ast.Arg:
        return ast.Arg(None, children[0], self._span(meta))
