"""ArchGraph -> `.grow` text: `final.grow`, the grown architecture with its sizes fixed.

The graph is turned back into the Spec dataclasses and printed by the one formatter
(`growdsl.lang.format_spec`), so `final.grow` re-parses and `growdsl run final.grow` trains the
same architecture from scratch. Choices are written as their chosen path, ranges and sets as the
current value; blocks and repeats appear expanded, as nested `{ }` sequences.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import OPS, explicit_args
from growdsl.lang.ast import (
    Arg,
    BranchTerm,
    Call,
    ListValue,
    ModelDecl,
    Name,
    Num,
    OpTerm,
    SeqTerm,
    Spec,
    Term,
    Value,
)
from growdsl.lang.format import format_spec


def _value(v: Any) -> Value:
    if isinstance(v, bool):
        return Name("true" if v else "false")
    if isinstance(v, (int, float)):
        return Num(v, repr(v))
    if isinstance(v, (list, tuple)):
        return ListValue(tuple(_value(x) for x in v))
    return Name(str(v))


def _op_call(graph: ArchGraph, node: str) -> Call:
    attrs = graph[node]
    sig = OPS[attrs["op"]]
    args = explicit_args(attrs["op"], attrs.get("args", {}))
    out: list[Arg] = []
    positional = True  # leading required arguments read best bare: `linear(64)`, `slice(0, 4)`
    for name in sig.names:
        positional = positional and name not in sig.defaults()
        if name in args:
            out.append(Arg(None if positional else name, _value(args[name])))
    return Call(attrs["op"], tuple(out))


def _inlined(graph: ArchGraph, node: str) -> bool:
    """An unlabelled seq (a block use, a repeat copy) or resolved choice means the same spliced
    into its parent."""
    return graph.kind(node) in ("seq", "choice") and not graph[node].get("label")


def _seq_terms(graph: ArchGraph, node: str) -> tuple[Term, ...]:
    """The terms of a sequence, unlabelled inner sequences spliced in, unless they hold labels:
    those stay nested `{ ... }`, since splicing copies of a repeat or of a block would put one
    label twice among siblings (lowering keeps labels unique within their own sequence)."""
    terms: list[Term] = []
    for child in graph.live_children(node):
        if _inlined(graph, child):
            inner = _seq_terms(graph, child)
            if any(getattr(t, "label", None) for t in inner):
                terms.append(SeqTerm(inner))
            else:
                terms.extend(inner)
        else:
            terms.append(_term(graph, child))
    return tuple(terms)


def _path(graph: ArchGraph, node: str) -> SeqTerm:
    """A branch path as a sequence of terms; an empty one (a `repeat 0..N` path) is `identity`,
    as a path needs at least one term."""
    terms = _seq_terms(graph, node) if _inlined(graph, node) else (_term(graph, node),)
    return SeqTerm(terms or (OpTerm(Call("identity")),))


def _term(graph: ArchGraph, node: str) -> Term:
    kind = graph.kind(node)
    label = graph[node].get("label")
    if kind == "op":
        return OpTerm(_op_call(graph, node), label)
    if kind == "branch":
        return BranchTerm(graph[node]["merge"], tuple(_path(graph, c) for c in graph.children(node)), label)
    if kind == "choice":
        (chosen,) = graph.live_children(node)
        inner = _term(graph, chosen)
        return SeqTerm((inner,), label) if label else inner
    return SeqTerm(_seq_terms(graph, node), label)


def graph_to_model(graph: ArchGraph, input_declared: bool = False) -> ModelDecl:
    """The model declaration of a (resolved) graph; `input` is written only where the spec had it."""
    body = SeqTerm(_seq_terms(graph, graph.root))
    options = (Arg("input", _value(list(graph.input_shape))),) if input_declared else ()
    return ModelDecl(graph.root, options, body)


def final_spec(spec: Spec, graph: ArchGraph) -> Spec:
    """The spec of the grown architecture: same data and training, no grow or search block."""
    input_declared = any(a.key == "input" for a in spec.model.options)
    return replace(spec, model=graph_to_model(graph, input_declared), blocks=(), grow=None, search=None)


def final_grow_text(spec: Spec, graph: ArchGraph) -> str:
    header = "# The final architecture of a growdsl run: sizes fixed, choices resolved.\n"
    return header + format_spec(final_spec(spec, graph))
