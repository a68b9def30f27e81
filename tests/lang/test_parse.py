"""What `parse_text` builds: values, model terms, sections and spans."""

from __future__ import annotations

import pytest

from growdsl.errors import SpecError
from growdsl.lang import (
    Arg,
    AtEpochs,
    BranchTerm,
    Call,
    ChoiceTerm,
    Every,
    ListValue,
    Name,
    Num,
    OpTerm,
    Range,
    RepeatTerm,
    SeqTerm,
    SetValue,
    Str,
    TransformStmt,
    Until,
    When,
    format_spec,
    parse_text,
    parse_value,
)

MINIMAL = "model m { flatten linear(classes) }\n"


def terms(body: str):
    return parse_text(f"model m {{ {body} }}").model.body.terms


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("16", 16),
        ("0.1", 0.1),
        ("1e-3", 0.001),
        ("-2", -2),
        ("20k", 20_000),
        ("1.5M", 1_500_000),
        ("2G", 2_000_000_000),
        ("1.1k", 1100),
        ("2.5e3", 2500.0),
    ],
)
def test_numbers_keep_their_value_and_spelling(text, value):
    num = parse_value(text)
    assert num == Num(value, text)
    assert type(num.value) is type(value)


def test_a_range_is_not_eaten_by_a_float():
    assert parse_value("8..128") == Range(Num(8, "8"), Num(128, "128"))
    assert parse_value("0.5..1.5") == Range(Num(0.5, "0.5"), Num(1.5, "1.5"))


def test_values_of_every_form():
    assert parse_value('"data/mnist"') == Str("data/mnist")
    assert parse_value(r'"a\"b\\c\n"') == Str('a"b\\c\n')
    assert parse_value("relu") == Name("relu")
    assert parse_value("[3, 32, 32,]") == ListValue(tuple(Num(n, str(n)) for n in (3, 32, 32)))
    assert parse_value("[]") == ListValue(())
    assert parse_value("{3, 5, 7}") == SetValue(tuple(Num(n, str(n)) for n in (3, 5, 7)))
    assert parse_value("lo..hi") == Range(Name("lo"), Name("hi"))
    assert parse_value('ray(address: "auto")') == Call("ray", (Arg("address", Str("auto")),))


def test_a_call_in_a_value_keeps_positional_and_keyword_args():
    call = parse_value("step(10, gamma: 0.5)")
    assert call.positional == (Num(10, "10"),)
    assert call.keywords == {"gamma": Num(0.5, "0.5")}


def test_label_binds_to_the_term_just_before_as():
    stem = terms("conv(16..64, k: 3) bn relu as stem")
    assert [t.label for t in stem] == [None, None, "stem"]
    assert stem[2].call.name == "relu"


def test_compound_terms_become_their_nodes():
    branch, repeat, choice, seq = terms(
        "branch add { conv(16, k: 3) bn | identity } as b "
        "repeat 1..4 { relu } "
        "choice { conv(16, k: 3) | sepconv(16, k: 5) | identity } "
        "{ relu gelu } as g"
    )
    assert isinstance(branch, BranchTerm) and branch.merge == "add" and branch.label == "b"
    assert [len(p.terms) for p in branch.paths] == [2, 1]
    assert isinstance(repeat, RepeatTerm) and repeat.count == Range(Num(1, "1"), Num(4, "4"))
    assert isinstance(choice, ChoiceTerm) and len(choice.paths) == 3
    assert seq == SeqTerm((OpTerm(Call("relu")), OpTerm(Call("gelu"))), label="g")


def test_repeat_count_may_be_a_number_or_a_block_parameter():
    fixed, param = terms("repeat 3 { relu } repeat depth { relu }")
    assert fixed.count == Num(3, "3") and param.count == Name("depth")


def test_sections_in_any_order_and_blocks_used_before_defined():
    spec = parse_text(
        "export [onnx]\nsearch random(trials: 4)\nmodel m { res(8) }\n"
        "block res(c, k: 3) { conv(c, k: k) }\ntrain { epochs 2 }\ndata spirals(n: 100)\n"
    )
    assert spec.blocks[0].name == "res"
    assert spec.blocks[0].params[1].default == Num(3, "3")
    assert spec.data == Call("spirals", (spec.data.args[0],))
    assert spec.search.method.name == "random"
    assert [n.id for n in spec.export.formats] == ["onnx"]


def test_model_input_option():
    spec = parse_text('data csv(path: "x.csv") model m(input: [4]) { linear(classes) }')
    assert spec.model.options[0].key == "input"


def test_grow_statements_of_every_shape():
    spec = parse_text(
        MINIMAL + "grow { every 5 epochs at epochs [5, 10] when plateau(patience: 3) "
        "until params > 200k until flops <= 2M split firefly(wider: 8) }"
    )
    kinds = [type(s) for s in spec.grow.statements]
    assert kinds == [Every, AtEpochs, When, Until, Until, TransformStmt, TransformStmt]
    assert spec.grow.statements[3] == Until("params", ">", Num(200_000, "200k"))
    assert spec.grow.statements[5].call == Call("split")


def test_keywords_are_plain_names_where_no_keyword_fits():
    keywords = "model block data train grow search export branch repeat choice as every at when until epochs"
    settings = " ".join(f"{k} {k}" for k in keywords.split())
    spec = parse_text(MINIMAL + f"train {{ {settings} }}")
    assert [(s.name, s.value) for s in spec.train.settings] == [(k, Name(k)) for k in keywords.split()]
    spec = parse_text(MINIMAL + "grow { split(every: 2, on: [at, when]) }")
    assert spec.grow.statements[0].call.keywords["every"] == Num(2, "2")


def test_comments_and_layout_carry_no_meaning():
    a = parse_text("# c\nmodel m {  # c\n flatten\n\n linear(classes) # c\n}\n")
    b = parse_text("model m{flatten linear(classes)}")
    assert a == b


def test_spans_point_at_the_source():
    spec = parse_text("data digits\n\nmodel m {\n    flatten\n    linear(8..64) as h\n}\n", "s.grow")
    op = spec.model.body.terms[1]
    assert (op.span.file, op.span.line, op.span.col) == ("s.grow", 5, 5)
    rng = op.call.args[0].value
    assert (rng.span.line, rng.span.col, rng.span.end_col) == (5, 12, 17)
    assert (spec.model.span.line, spec.model.span.col) == (3, 1)
    assert spec.file == "s.grow"


def test_every_syntax_error_is_one_spec_error_with_a_place():
    with pytest.raises(SpecError) as info:
        parse_text("model m {\n  relu ) }", "x.grow")
    assert (info.value.span.line, info.value.span.col) == (2, 8)
    assert str(info.value).startswith("x.grow:2:8: unexpected ')'")


def test_a_misspelt_keyword_gets_a_did_you_mean():
    with pytest.raises(SpecError) as info:
        parse_text(MINIMAL + "serach random(trials: 3)")
    assert info.value.hint == "did you mean 'search'?"


def test_an_op_near_a_keyword_is_not_taken_for_a_typo():
    with pytest.raises(SpecError) as info:
        parse_text("model m { tanh batch ) }")
    assert info.value.hint is None


@pytest.mark.benchmark  # timed: under CI's load a wall-clock bound is noise, so not a test by default
def test_a_large_spec_parses_fast():
    import time

    body = "\n".join("    linear(64) relu" for _ in range(1000))
    text = f"model deep {{\n    flatten\n{body}\n    linear(classes)\n}}\n"
    parse_text(text)  # warm the cached parser
    start = time.perf_counter()
    spec = parse_text(text)
    assert len(spec.model.body.terms) == 2002
    assert time.perf_counter() - start < 0.5


def test_a_device_index_parses_as_written_and_formats_back():

    spec = parse_text("model m { relu } train { device cuda:1 epochs 3 }")
    assert spec.train.settings[0].value == Name("cuda:1")
    assert parse_text(format_spec(spec)) == spec
    assert parse_value("cuda:0") == Name("cuda:0")
