"""Lowering: a `Spec`'s model tree becomes an `ArchGraph`.

Lowering is where a spec's meaning is checked against the op table (`ops.py`): every call is an
op or a `block` use, every argument gets a resolved number, and every mistake is a `SpecError` at
the place in the spec that caused it. What lowering keeps open is exactly what growth and search
may change later: width ranges (`width`), set-valued arguments (`options`), growable repeats
(`depth` and `template`) and choices (`chosen: None`).

Ids: the root is the model's name; a child is its parent's id plus its label, or its position in
the parent at lowering time (`mlp.hidden1`, `net.1.0.2`). Positions are passed to `ArchGraph.add`
explicitly, so lowering stays linear in the size of the spec.
"""

from __future__ import annotations

from typing import Any

from growdsl import plugins
from growdsl.errors import ShapeError, Span, SpecError
from growdsl.ir.edits import SUBTREE_ROOT
from growdsl.ir.graph import ArchGraph, to_json
from growdsl.ir.ops import BUILTIN_OPS, OPS, REQUIRED, OpSig
from growdsl.ir.shapes import fmt_shape
from growdsl.lang import ast
from growdsl.lang.suggest import did_you_mean, unknown_name_message

# The value each op argument takes, by argument name (the op table holds names and defaults).
_ARG_KINDS = {
    "out": "width",
    "k": "positive integer",
    "stride": "positive integer",
    "groups": "positive integer",
    "padding": "non-negative integer",
    "bias": "boolean",
    "p": "probability",
    "start": "non-negative integer",
    "end": "positive integer",
}
_BUILTIN_NAMES = ("classes", "input", "true", "false")


Env = dict[str, ast.Value]


def lower(spec: ast.Spec, input_shape: tuple[int, ...] | None, classes: int | None) -> ArchGraph:
    """The `ArchGraph` of `spec`'s model, bound to the data's input shape and number of classes.

    `input_shape` and `classes` come from the data set (None where it fixes none); a model's own
    `input: [...]` option supplies the shape where the data does not, and must agree where it does.
    """
    model = spec.model
    shape = _input_shape(model, input_shape)
    lowerer = _Lowerer(spec, shape, classes)
    graph = ArchGraph.new(model.name, shape, classes)
    graph[model.name]["span"] = model.span
    try:
        lowerer.sequence(graph, model.name, model.body.terms, {})
    except RecursionError:
        raise SpecError(
            f"model {model.name} nests too deeply to lower (hundreds of levels of blocks or {{ }})",
            model.span,
            hint="flatten the nesting, or use `repeat N { ... }` for many copies",
        ) from None
    return graph


def _input_shape(model: ast.ModelDecl, data_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    declared: tuple[int, ...] | None = None
    declared_span: Span | None = None
    for arg in model.options:
        if arg.key != "input":
            raise SpecError(
                unknown_name_message("model option", arg.key or "(positional)", ["input"]),
                arg.span,
                expected=f"model {model.name}(input: [C, H, W])",
            )
        items = arg.value.items if isinstance(arg.value, ast.ListValue) else None
        if not items or not all(_is_positive_int(v) for v in items):
            raise SpecError(
                "`input` must be a list of positive integers", arg.value.span, expected="input: [C, H, W]"
            )
        declared, declared_span = tuple(int(v.value) for v in items), arg.span
    if declared is not None and data_shape is not None and declared != tuple(data_shape):
        raise ShapeError(
            f"model {model.name} declares input {fmt_shape(declared)} "
            f"but the data gives {fmt_shape(tuple(data_shape))}",
            declared_span,
            hint="drop `input` (the data fixes the shape) or make them agree",
        )
    shape = declared if declared is not None else data_shape
    if shape is None:
        raise SpecError(
            f"the data fixes no input shape: declare `model {model.name}(input: [...])`",
            model.span,
            expected=f"model {model.name}(input: [C, H, W]) or model {model.name}(input: [features])",
        )
    return tuple(shape)


def _is_positive_int(value: ast.Value) -> bool:
    return isinstance(value, ast.Num) and _positive_int(value.value)


class _Lowerer:
    """Holds what lowering one spec needs: its blocks, the data binding, the block-use stack."""

    def __init__(self, spec: ast.Spec, input_shape: tuple[int, ...], classes: int | None) -> None:
        self.blocks: dict[str, ast.BlockDef] = {}
        for block in spec.blocks:
            if block.name in BUILTIN_OPS:  # a block may shadow a plugin's op (docs/plugins.md)
                raise SpecError(f"block '{block.name}' has the name of an op", block.span)
            if block.name in self.blocks:
                first = self.blocks[block.name].span
                raise SpecError(f"block '{block.name}' is defined twice (first at {first})", block.span)
            self.blocks[block.name] = block
        self.input_shape = input_shape
        self.classes = classes
        self.expanding: list[str] = []

    # ------------------------------------------------------------ terms

    def sequence(self, graph: ArchGraph, parent: str, terms: tuple[ast.Term, ...], env: Env) -> None:
        labelled: dict[str, ast.Term] = {}
        for pos, term in enumerate(terms):
            if term.label is not None:
                if term.label in labelled:
                    raise SpecError(
                        f"label '{term.label}' is used twice in {parent} "
                        f"(first at {labelled[term.label].span})",
                        term.span,
                        hint="labels name nodes, so siblings need different labels",
                    )
                labelled[term.label] = term
            key = term.label if term.label is not None else str(pos)
            self.term(graph, parent, f"{parent}.{key}", pos, term, env)

    def term(self, graph: ArchGraph, parent: str, node: str, pos: int, term: ast.Term, env: Env) -> None:
        common = {"pos": pos, "label": term.label, "span": term.span}
        if isinstance(term, ast.OpTerm):
            name = term.call.name
            if name in self.blocks:
                self.block_use(graph, parent, node, term, env, common)
            elif name in OPS or plugins.provide(name):
                graph.add(parent, node, "op", **common, **self.op_attrs(OPS[name], term.call, env))
            else:
                known = [*OPS, *self.blocks]
                what = "block" if did_you_mean(name, known) in self.blocks else "op"
                hint = plugins.unknown_hint(name, known) if what == "op" else None
                raise SpecError(unknown_name_message(what, name, known), term.call.span, hint=hint)
        elif isinstance(term, ast.SeqTerm):
            graph.add(parent, node, "seq", **common)
            self.sequence(graph, node, term.terms, env)
        elif isinstance(term, ast.BranchTerm):
            if term.merge not in ast.MERGES:
                raise SpecError(unknown_name_message("merge", term.merge, ast.MERGES), term.merge_span)
            graph.add(parent, node, "branch", merge=term.merge, **common)
            self.paths(graph, node, term.paths, env)
        elif isinstance(term, ast.ChoiceTerm):
            graph.add(parent, node, "choice", chosen=None, **common)
            self.paths(graph, node, term.paths, env)
        elif isinstance(term, ast.RepeatTerm):
            self.repeat(graph, parent, node, term, env, common)
        else:  # pragma: no cover - the Term union is closed
            raise TypeError(f"unknown term {term!r}")

    def paths(self, graph: ArchGraph, node: str, paths: tuple[ast.SeqTerm, ...], env: Env) -> None:
        """One child per path: the term itself when the path is a single term (`| identity`),
        so ids stay short, else a `seq` of the path's terms."""
        for i, path in enumerate(paths):
            if len(path.terms) == 1 and path.label is None:
                (term,) = path.terms
                self.term(graph, node, f"{node}.{term.label or i}", i, term, env)
            else:
                graph.add(node, f"{node}.{i}", "seq", pos=i, label=path.label, span=path.span)
                self.sequence(graph, f"{node}.{i}", path.terms, env)

    def repeat(
        self, graph: ArchGraph, parent: str, node: str, term: ast.RepeatTerm, env: Env, common: dict
    ) -> None:
        count = _substitute(term.count, env, self.known_names(env))
        if isinstance(count, ast.Range):
            lo = self.integer(count.lo, "repeat's low end", minimum=0)
            hi = self.integer(count.hi, "repeat's high end", minimum=max(lo, 1))
            holder = "#repeat"  # a scratch root: the template's own root is the copy, `*`
            template = ArchGraph.new(holder, self.input_shape, self.classes)
            self.copy(template, holder, SUBTREE_ROOT, 0, term.body, env)
            data = to_json(template)
            graph.add(parent, node, "seq", depth=(lo, hi), **common)
            graph[node]["template"] = {
                "nodes": [n for n in data["nodes"] if n["id"] != holder],
                "edges": [e for e in data["edges"] if e["source"] != holder],
            }
        else:
            lo = self.integer(count, "repeat count", minimum=1)
            graph.add(parent, node, "seq", **common)
        for i in range(lo):
            self.copy(graph, node, f"{node}.{i}", i, term.body, env)
            if len(graph.g) > MAX_NODES:  # checked as it grows: `repeat 1000000` must not fill memory
                raise SpecError(
                    f"the model lowers to more than {MAX_NODES:,} nodes ({lo:,} copies of this repeat)",
                    term.span,
                    hint="fewer copies, or a smaller body",
                )

    def copy(self, graph: ArchGraph, parent: str, node: str, pos: int, body: ast.SeqTerm, env: Env) -> None:
        """One copy of a repeat's body: the term itself when the body is a single term, so ids
        stay short, else a `seq` of the body's terms."""
        if len(body.terms) == 1:
            self.term(graph, parent, node, pos, body.terms[0], env)
        else:
            graph.add(parent, node, "seq", pos=pos, span=body.span)
            self.sequence(graph, node, body.terms, env)

    def block_use(
        self, graph: ArchGraph, parent: str, node: str, term: ast.OpTerm, env: Env, common: dict
    ) -> None:
        block = self.blocks[term.call.name]
        if block.name in self.expanding:
            cycle = " -> ".join([*self.expanding[self.expanding.index(block.name) :], block.name])
            raise SpecError(f"block '{block.name}' uses itself: {cycle}", term.call.span)
        params = tuple((p.name, p.default if p.default is not None else REQUIRED) for p in block.params)
        bound = _bind(f"block {block.name}", params, term.call)
        inner: Env = {}
        for name, (value, span) in bound.items():
            scope = env if span is not None else {}  # a default sees no names of the caller
            inner[name] = _substitute(value, scope, self.known_names(scope))
        graph.add(parent, node, "seq", block=block.name, **common)
        self.expanding.append(block.name)
        self.sequence(graph, node, block.body.terms, inner)
        self.expanding.pop()

    # ------------------------------------------------------------ op arguments

    def op_attrs(self, sig: OpSig, call: ast.Call, env: Env) -> dict[str, Any]:
        """`op`, `args` (resolved, in signature order), and `width`/`options`/`auto` where they apply."""
        bound = _bind(sig.name, sig.params, call)
        args: dict[str, Any] = {}
        attrs: dict[str, Any] = {"op": sig.name, "args": args}
        derived = []
        for name, (value, span) in bound.items():
            if span is None:  # the op table's default; None means derived from `k` below
                if value is None:
                    derived.append(name)
                args[name] = value
                continue
            value = _substitute(value, env, self.known_names(env))
            if isinstance(value, ast.Range):
                if name != sig.width:
                    raise SpecError(
                        f"{sig.name}'s `{name}` cannot be a range: only its width can grow", value.span
                    )
                lo = self.integer(value.lo, f"{sig.name}'s `{name}`", minimum=1)
                hi = self.integer(value.hi, f"{sig.name}'s `{name}`", minimum=1)
                if lo > hi:
                    raise SpecError(
                        f"range {lo}..{hi} runs backwards: the low end comes first",
                        value.span,
                        expected=f"{hi}..{lo}",
                    )
                args[name] = lo
                attrs["width"] = (lo, hi)
            elif isinstance(value, ast.SetValue):
                if name not in sig.choosable:
                    raise SpecError(f"{sig.name}'s `{name}` cannot be a set of choices", value.span)
                if not value.items:
                    raise SpecError("a set needs at least one value", value.span)
                choices = [self.scalar(sig, name, item) for item in value.items]
                args[name] = choices[0]
                attrs.setdefault("options", {})[name] = choices
            else:
                args[name] = self.scalar(sig, name, value)
        if "padding" in derived:
            args["padding"] = args["k"] // 2
        if "stride" in derived:
            args["stride"] = args["k"]
        if derived and "k" in attrs.get("options", {}):
            attrs["auto"] = derived  # `sample` recomputes these when it picks another k
        return attrs

    def scalar(self, sig: OpSig, name: str, value: ast.Value) -> Any:
        """One argument value checked against its kind; the error names what was expected."""
        kind = _ARG_KINDS.get(name, "number")
        literal = self.literal(value)
        if kind == "width" or kind.endswith("integer"):
            _check_size(value, literal, f"{sig.name}'s `{name}`")
        if kind == "width":
            ok = _positive_int(literal)
            expected = "a positive integer, a range like 8..128, a set like {16, 32} or `classes`"
        elif kind == "positive integer":
            ok = _positive_int(literal)
            expected = "a positive integer"
        elif kind == "non-negative integer":
            ok = _non_negative_int(literal)
            expected = "a non-negative integer"
        elif kind == "boolean":
            ok = isinstance(literal, bool)
            expected = "true or false"
        elif kind == "probability":
            ok = isinstance(literal, (int, float)) and not isinstance(literal, bool) and 0 <= literal < 1
            expected = "a number in [0, 1)"
        else:
            ok = isinstance(literal, (int, float)) and not isinstance(literal, bool)
            expected = "a number"
        if not ok:
            raise SpecError(
                f"{sig.name}'s `{name}` must be {expected}, not {_show(value, literal)}",
                value.span,
                expected=expected,
            )
        return int(literal) if kind.endswith("integer") or kind == "width" else literal

    def integer(self, value: ast.Value, what: str, *, minimum: int) -> int:
        literal = self.literal(value)
        _check_size(value, literal, what)
        if not (_non_negative_int(literal) and literal >= minimum):
            raise SpecError(
                f"{what} must be an integer >= {minimum}, not {_show(value, literal)}", value.span
            )
        return int(literal)

    def literal(self, value: ast.Value) -> Any:
        """A value as plain Python: numbers, bools, strings, tuples; `classes`/`input` bound from data."""
        if isinstance(value, ast.Num):
            return value.value
        if isinstance(value, ast.Name):
            if value.id == "classes":
                if self.classes is None:
                    raise SpecError(
                        "`classes` is not bound: the data gives no number of classes",
                        value.span,
                        hint="write the number of outputs instead, or use a data set with labels",
                    )
                return self.classes
            if value.id == "input":
                return self.input_shape
            return value.id == "true"  # _substitute let only builtin names through
        if isinstance(value, ast.Str):
            return value.value
        if isinstance(value, ast.ListValue):
            return tuple(self.literal(v) for v in value.items)
        return value  # ranges, sets and calls are rejected by the caller's check

    def known_names(self, env: Env) -> tuple[str, ...]:
        return (*env, *_BUILTIN_NAMES)


MAX_SIZE = 2**24
MAX_NODES = 100_000  # a lowered model's nodes: deep nets have thousands; more is a runaway repeat
"""The largest width, kernel, stride or count a spec may give: far above any network that fits a
machine, and small enough that a typo such as `linear(1e12)` fails at `check`, not in the
allocator halfway through a run."""


def _check_size(value: ast.Value, literal: Any, what: str) -> None:
    if isinstance(literal, (int, float)) and not isinstance(literal, bool) and literal > MAX_SIZE:
        raise SpecError(
            f"{what} of {value.text if isinstance(value, ast.Num) else literal} is larger than "
            f"growdsl allows ({MAX_SIZE:,})",
            value.span,
        )


def _positive_int(literal: Any) -> bool:
    if isinstance(literal, bool) or not isinstance(literal, (int, float)):
        return False
    return float(literal).is_integer() and literal > 0


def _non_negative_int(literal: Any) -> bool:
    return _positive_int(literal) or (literal == 0 and not isinstance(literal, bool))


def _show(value: ast.Value, literal: Any) -> str:
    if isinstance(value, ast.Num):
        return value.text
    if isinstance(value, ast.Name):
        return f"`{value.id}`"
    if isinstance(value, ast.Range):
        return "a range"
    if isinstance(value, ast.SetValue):
        return "a set"
    if isinstance(value, ast.Compare):
        return "a comparison"
    if isinstance(value, ast.Str):
        return f'"{value.value}"'
    return repr(literal)


def _substitute(value: ast.Value, env: Env, known: tuple[str, ...]) -> ast.Value:
    """`value` with block parameters replaced by their arguments; an unknown name is an error."""
    if isinstance(value, ast.Name):
        if value.id in env:
            return env[value.id]
        if value.id in _BUILTIN_NAMES:
            return value
        raise SpecError(unknown_name_message("name", value.id, known), value.span)
    if isinstance(value, ast.Range):
        return ast.Range(_substitute(value.lo, env, known), _substitute(value.hi, env, known), value.span)
    if isinstance(value, ast.SetValue):
        return ast.SetValue(tuple(_substitute(v, env, known) for v in value.items), value.span)
    if isinstance(value, ast.ListValue):
        return ast.ListValue(tuple(_substitute(v, env, known) for v in value.items), value.span)
    return value


def _bind(
    what: str, params: tuple[tuple[str, Any], ...], call: ast.Call
) -> dict[str, tuple[Any, Span | None]]:
    """Bind a call's arguments to `params` by position then keyword; defaults fill the rest.

    Returns `{param: (value, span)}` in parameter order; a value is an AST value where the call
    gave one, else the parameter's default.
    """
    names = [p for p, _ in params]
    given: dict[str, tuple[Any, Span | None]] = {}
    positional = [a for a in call.args if a.key is None]
    if len(positional) > len(names):
        extra = positional[len(names)]
        raise SpecError(
            f"{what} takes at most {len(names)} positional argument{'s' * (len(names) != 1)} "
            f"but got {len(positional)}",
            extra.span,
            expected=_signature(what, params),
        )
    for name, arg in zip(names, positional, strict=False):
        given[name] = (arg.value, arg.span)
    for arg in call.args:
        if arg.key is None:
            continue
        if arg.key not in names:
            raise SpecError(
                unknown_name_message(f"argument of {what}", arg.key, names)
                if names
                else f"{what} takes no arguments",
                arg.span,
                expected=_signature(what, params),
            )
        if arg.key in given:
            raise SpecError(f"{what} got argument `{arg.key}` twice", arg.span)
        given[arg.key] = (arg.value, arg.span)
    bound: dict[str, tuple[Any, Span | None]] = {}
    for name, default in params:
        if name in given:
            bound[name] = given[name]
        elif default is REQUIRED:
            raise SpecError(f"{what} needs argument `{name}`", call.span, expected=_signature(what, params))
        else:
            bound[name] = (default, None)
    return bound


def _signature(what: str, params: tuple[tuple[str, Any], ...]) -> str:
    name = what.split()[-1]
    parts = [p if d is REQUIRED else f"{p}: ..." for p, d in params]
    return f"{name}({', '.join(parts)})"
