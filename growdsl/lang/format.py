"""`Spec` back to text, in one canonical layout (what `growdsl fmt` prints).

The layout: sections in the order data, blocks, model, train, grow, search, export, a blank line
between them; 4-space indents; one model term per line, its `as` label on the same line. A path of
a `branch` or `choice` stays on one line when it holds only ops and fits, and a later path starts
with `  | ` in the gutter; a nested `{ }` or `repeat` body of ops only stays on one line when it
fits. Numbers print as written (`20k`, `1e-3`).

`parse_text(format_spec(s)) == s` for every parsed spec, so formatting is idempotent. A `Spec`
holds no comments; `growdsl fmt` puts the source's comments back into this text with
`lang.comments.weave_comments`, without changing the layout of the code.
"""

from __future__ import annotations

from growdsl.lang import ast

INDENT = "    "
WIDTH = 88


def format_spec(spec: ast.Spec) -> str:
    """The canonical text of `spec`, ending in one newline."""
    sections: list[str] = []
    if spec.data is not None:
        sections.append(f"data {format_call(spec.data)}")
    sections += [_block(b) for b in spec.blocks]
    sections.append(_model(spec.model))
    if spec.train is not None:
        lines = [f"{INDENT}{s.name} {format_value(s.value)}" for s in spec.train.settings]
        sections.append(_braced("train", lines))
    if spec.grow is not None:
        sections.append(_braced("grow", [INDENT + _grow_statement(s) for s in spec.grow.statements]))
    if spec.search is not None:
        sections.append(f"search {format_call(spec.search.method)}")
    if spec.export is not None:
        sections.append(f"export [{', '.join(n.id for n in spec.export.formats)}]")
    return "\n\n".join(sections) + "\n"


# ------------------------------------------------------------------ values


def format_value(value: ast.Value) -> str:
    """A value as it is written in a spec; a call always keeps its parentheses here, since a
    bare name in a value position is a `Name`."""
    if isinstance(value, ast.Num):
        return value.text
    if isinstance(value, ast.Str):
        return '"' + _escape(value.value) + '"'
    if isinstance(value, ast.Name):
        return value.id
    if isinstance(value, ast.ListValue):
        return "[" + ", ".join(format_value(v) for v in value.items) + "]"
    if isinstance(value, ast.SetValue):
        return "{" + ", ".join(format_value(v) for v in value.items) + "}"
    if isinstance(value, ast.Range):
        return f"{format_value(value.lo)}..{format_value(value.hi)}"
    if isinstance(value, ast.Call):
        return value.name + _args(value.args)
    if isinstance(value, ast.Compare):
        return f"{value.metric} {value.op} {value.bound.text}"
    raise TypeError(f"not a value: {value!r}")


def format_call(call: ast.Call) -> str:
    """A call where the grammar expects one (an op, `data`, `search`, a transform): a call
    without arguments prints as its bare name."""
    return call.name + (_args(call.args) if call.args else "")


def _args(args: tuple[ast.Arg, ...]) -> str:
    return "(" + ", ".join(_arg(a) for a in args) + ")"


def _arg(arg: ast.Arg) -> str:
    return format_value(arg.value) if arg.key is None else f"{arg.key}: {format_value(arg.value)}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")


# ------------------------------------------------------------------ sections


def _braced(head: str, lines: list[str]) -> str:
    return f"{head} {{ }}" if not lines else "\n".join([f"{head} {{", *lines, "}"])


def _model(model: ast.ModelDecl) -> str:
    head = f"model {model.name}" + (_args(model.options) if model.options else "")
    return _braced(head, _seq_lines(model.body, INDENT))


def _block(block: ast.BlockDef) -> str:
    params = ", ".join(
        p.name if p.default is None else f"{p.name}: {format_value(p.default)}" for p in block.params
    )
    head = f"block {block.name}" + (f"({params})" if block.params else "")
    return _braced(head, _seq_lines(block.body, INDENT))


def _grow_statement(stmt: ast.GrowStmt) -> str:
    if isinstance(stmt, ast.Every):
        return f"every {stmt.epochs.text} epochs"
    if isinstance(stmt, ast.AtEpochs):
        return f"at epochs {format_value(stmt.epochs)}"
    if isinstance(stmt, ast.When):
        return f"when {format_call(stmt.trigger)}"
    if isinstance(stmt, ast.Until):
        return f"until {stmt.metric} {stmt.op} {stmt.value.text}"
    return format_call(stmt.call)


# ------------------------------------------------------------------ model trees


def _seq_lines(seq: ast.SeqTerm, indent: str) -> list[str]:
    """One term per line (a compound term takes several), each line fully indented."""
    return [line for term in seq.terms for line in _term_lines(term, indent)]


def _inline(seq: ast.SeqTerm, indent: str, width_used: int) -> str | None:
    """The terms of `seq` on one line, when they are all ops and the line fits."""
    if not all(isinstance(t, ast.OpTerm) for t in seq.terms):
        return None
    text = " ".join(_op(t) for t in seq.terms)  # type: ignore[arg-type]
    return text if len(indent) + width_used + len(text) <= WIDTH else None


def _op(term: ast.OpTerm) -> str:
    return format_call(term.call) + _label(term.label)


def _label(label: str | None) -> str:
    return f" as {label}" if label else ""


def _body(head: str, seq: ast.SeqTerm, label: str | None, indent: str) -> list[str]:
    """`head { ... }` for a nested block or a repeat: on one line when it is short and flat."""
    if not seq.terms:
        return [f"{indent}{head}{{ }}{_label(label)}"]
    inline = _inline(seq, indent, len(head) + 4)
    if inline is not None:
        return [f"{indent}{head}{{ {inline} }}{_label(label)}"]
    return [f"{indent}{head}{{", *_seq_lines(seq, indent + INDENT), f"{indent}}}{_label(label)}"]


def _paths(head: str, paths: tuple[ast.SeqTerm, ...], label: str | None, indent: str) -> list[str]:
    """`head { path | path }`: each path indented, each later path marked by `  | `."""
    lines = [f"{indent}{head}{{"]
    inner = indent + INDENT
    for i, path in enumerate(paths):
        inline = _inline(path, inner, 0)
        path_lines = [inner + inline] if inline is not None else _seq_lines(path, inner)
        if i > 0:
            path_lines[0] = indent + "  | " + path_lines[0][len(inner) :]
        lines += path_lines
    return [*lines, f"{indent}}}{_label(label)}"]


def _term_lines(term: ast.Term, indent: str) -> list[str]:
    if isinstance(term, ast.OpTerm):
        return [indent + _op(term)]
    if isinstance(term, ast.SeqTerm):
        return _body("", term, term.label, indent)
    if isinstance(term, ast.RepeatTerm):
        return _body(f"repeat {format_value(term.count)} ", term.body, term.label, indent)
    if isinstance(term, ast.BranchTerm):
        return _paths(f"branch {term.merge} ", term.paths, term.label, indent)
    if isinstance(term, ast.ChoiceTerm):
        return _paths("choice ", term.paths, term.label, indent)
    raise TypeError(f"not a model term: {term!r}")
