"""Whatever text comes in, `parse_text` returns a `Spec` or raises a `SpecError`, never anything
else; and whatever it accepts, `format_spec` prints so that it re-parses to the same spec."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from lang_examples import example_specs

from growdsl.errors import SpecError
from growdsl.lang import format_spec, parse_text

SEEDS = [text for _, text in example_specs()]
TOKENS = re.compile(r'"[^"\n]*"|\d+(?:\.\d+)?[A-Za-z]*|[A-Za-z_]\w*|\.\.|>=|<=|\S')
PIECES = [
    "model", "block", "data", "train", "grow", "search", "export", "branch", "repeat", "choice",
    "as", "every", "at", "when", "until", "epochs", "{", "}", "(", ")", "[", "]", "|", ",", ":",
    "..", ">", "<=", "1", "8..128", "1e-3", "20k", "2x", '"s', '"s"', "#", "\n", "relu", "linear(8)",
]  # fmt: skip
FUZZ = settings(max_examples=200, deadline=None)


def parses_or_fails_cleanly(text: str) -> None:
    try:
        spec = parse_text(text, "fuzz.grow")
    except SpecError as err:
        assert err.span is not None
        err.render()
        return
    assert parse_text(format_spec(spec), "fmt") == spec


@FUZZ
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=120))
def test_random_text(text):
    parses_or_fails_cleanly(text)


@FUZZ
@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_random_token_soup(pieces):
    parses_or_fails_cleanly(" ".join(pieces))


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_character_mutations_of_valid_specs(seed, data):
    chars = list(seed)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(chars) - 1))
        kind = data.draw(st.sampled_from(["delete", "insert", "swap"]))
        if kind == "delete":
            del chars[i]
        elif kind == "insert":
            chars.insert(i, data.draw(st.sampled_from(list('{}()[]|,:."#-=@ \nak0'))))
        else:
            j = data.draw(st.integers(0, len(chars) - 1))
            chars[i], chars[j] = chars[j], chars[i]
    parses_or_fails_cleanly("".join(chars))


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_token_mutations_of_valid_specs(seed, data):
    tokens = TOKENS.findall(seed)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(tokens) - 1))
        kind = data.draw(st.sampled_from(["delete", "duplicate", "swap", "replace"]))
        if kind == "delete":
            del tokens[i]
        elif kind == "duplicate":
            tokens.insert(i, tokens[i])
        elif kind == "swap":
            j = data.draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        else:
            tokens[i] = data.draw(st.sampled_from(PIECES))
    parses_or_fails_cleanly(" ".join(tokens))
