"""Every lowering mistake is a `SpecError` (or `ShapeError`) at the place that caused it."""

from __future__ import annotations

import pytest

from growdsl.errors import ShapeError, SpecError

BLOCK = "block res(c, k: 3) { conv(c, k: k) relu }\n"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("model m {\n  flatten lineer(4)\n}", (2, 11), "unknown op 'lineer': did you mean 'linear'?"),
        (BLOCK + "model m { rez(8) }", (2, 11), "unknown block 'rez': did you mean 'res'?"),
        ("model m { linear(4, outt: 3) }", (1, 21), "unknown argument of linear 'outt': did you mean 'out'?"),
        ("model m { linear }", (1, 11), "linear needs argument `out`"),
        ("model m { linear(4, true, 5) }", (1, 27), "linear takes at most 2 positional arguments but got 3"),
        ("model m { linear(4, out: 5) }", (1, 21), "linear got argument `out` twice"),
        ("model m { relu(3) }", (1, 16), "relu takes at most 0 positional arguments"),
        ("model m { flatten linear(0) }", (1, 26), "linear's `out` must be a positive integer, a range"),
        ("model m { flatten linear(2.5) }", (1, 26), "linear's `out` must be a positive integer"),
        ('model m { flatten linear("x") }', (1, 26), "linear's `out` must be a positive integer"),
        ("model m { conv(8, k: 2..5) }", (1, 22), "conv's `k` cannot be a range: only its width can grow"),
        ("model m { conv(8, groups: {1, 2}) }", (1, 27), "conv's `groups` cannot be a set of choices"),
        ("model m { conv(8, k: 0) }", (1, 22), "conv's `k` must be a positive integer, not 0"),
        ("model m { conv(8, bias: 1) }", (1, 25), "conv's `bias` must be true or false"),
        ("model m { dropout(1.5) }", (1, 19), "dropout's `p` must be a number in [0, 1)"),
        ("model m { linear(c) }", (1, 18), "unknown name 'c'"),
        (BLOCK + "model m { res() }", (2, 11), "block res needs argument `c`"),
        (BLOCK + "model m { res(8, 3, 4) }", (2, 21), "block res takes at most 2 positional arguments"),
        (BLOCK + "model m { res(8, kk: 3) }", (2, 18), "unknown argument of block res 'kk'"),
        ("block res(c) { linear(cc) }\nmodel m { res(4) }", (1, 23), "unknown name 'cc': did you mean 'c'?"),
        ("block a { b }\nblock b { a }\nmodel m { a }", (2, 11), "block 'a' uses itself: a -> b -> a"),
        ("block relu { identity }\nmodel m { relu }", (1, 1), "block 'relu' has the name of an op"),
        ("model m { flatten linear(4) as h relu linear(4) as h }", (1, 39), "label 'h' is used twice in m"),
        ("model m { flatten repeat 0 { relu } }", (1, 26), "repeat count must be an integer >= 1, not 0"),
    ],
)
def test_lowering_error_names_place_and_problem(lower_text, text, where, message):
    with pytest.raises(SpecError) as info:
        lower_text(text)
    err = info.value
    assert message in err.message
    assert (err.span.line, err.span.col) == where


def test_classes_without_a_data_binding_is_an_error_at_the_name(lower_text):
    with pytest.raises(SpecError, match="`classes` is not bound") as info:
        lower_text("model m(input: [4]) {\n  linear(classes)\n}", input_shape=None, classes=None)
    assert (info.value.span.line, info.value.span.col) == (2, 10)


def test_model_input_differing_from_the_data_is_a_shape_error_at_input(lower_text):
    expected = r"declares input \[1, 28, 28\] but the data gives \[1, 8, 8\]"
    with pytest.raises(ShapeError, match=expected) as info:
        lower_text("model m(input: [1, 28, 28]) { flatten }")
    assert (info.value.span.line, info.value.span.col) == (1, 9)


def test_no_input_shape_anywhere_asks_for_a_model_input_declaration(lower_text):
    with pytest.raises(SpecError, match=r"declare `model m\(input: \[...\]\)`"):
        lower_text("model m { linear(2) }", input_shape=None, classes=None)


def test_unknown_model_option_suggests_input(lower_text):
    with pytest.raises(SpecError, match="unknown model option 'inptu': did you mean 'input'?"):
        lower_text("model m(inptu: [4]) { flatten }")
