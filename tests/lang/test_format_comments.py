"""`fmt` keeps comments: each one survives once, in order, next to the code it was written by,
and the text still parses to the same spec and is a fixed point of formatting."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lang_examples import example_specs

from growdsl.lang import format_spec, parse_text
from growdsl.lang.comments import weave_comments
from growdsl.lang.grammar import lark_parser

CANONICAL = [format_spec(parse_text(text, name)) for name, text in example_specs()]


def fmt(text: str) -> str:
    return weave_comments(text, format_spec(parse_text(text)))


def comments_of(text: str) -> list[str]:
    return [t.value for t in lark_parser().lex(text, dont_ignore=True) if t.type == "COMMENT"]


def code_tokens(text: str) -> list[str]:
    return [t.value for t in lark_parser().lex(text) if t.type != "WS"]


@st.composite
def relaid_with_comments(draw) -> tuple[str, list[str]]:
    """A canonical example's tokens laid out anew (each gap a space or a line break), with
    comments at random line ends and on lines of their own; also the comments, in order."""
    tokens = code_tokens(draw(st.sampled_from(CANONICAL)))
    parts, comments = [], []
    for i, token in enumerate(tokens):
        place = draw(st.sampled_from(["space", "newline", "newline", "trailing", "own line"]))
        parts.append(token)
        if place in ("trailing", "own line"):
            comments.append(f"# c{i} {{ | }} ( ) #")
            parts.append(f"  {comments[-1]}\n" if place == "trailing" else f"\n{comments[-1]}\n")
        else:
            parts.append(" " if place == "space" else "\n")
    if draw(st.booleans()):
        comments.insert(0, "# top")
        parts.insert(0, "# top\n")
    return "".join(parts), comments


@settings(max_examples=150, deadline=None)
@given(relaid_with_comments())
def test_comments_survive_once_in_order_and_formatting_is_a_fixed_point(case):
    source, comments = case
    once = fmt(source)
    assert comments_of(once) == comments
    assert parse_text(once) == parse_text(source)
    assert fmt(once) == once


def test_without_comments_the_text_is_format_spec():
    text = 'data csv(path: "a#b.csv") model m { relu() }'
    assert fmt(text) == format_spec(parse_text(text))
    assert "#" not in fmt(text).replace('"a#b.csv"', "")


def test_a_hash_inside_a_string_is_not_a_comment():
    text = 'data csv(path: "data#1.csv") # real\nmodel m { relu }\n'
    assert comments_of(fmt(text)) == ["# real"]
    assert fmt(text).startswith('data csv(path: "data#1.csv")  # real\n')


def test_comments_at_the_top_and_the_end_of_the_file_stay_there():
    text = "# about this spec\n# second line\nmodel m { relu }\n# the end\n"
    assert fmt(text) == "# about this spec\n# second line\nmodel m {\n    relu\n}\n# the end\n"


def test_a_comment_before_a_closing_brace_is_indented_inside_it():
    text = "model m {\n  relu\n  branch add {\n conv(4)\n # todo: more paths\n }\n# last\n}"
    assert fmt(text) == (
        "model m {\n"
        "    relu\n"
        "    branch add {\n"
        "        conv(4)\n"
        "        # todo: more paths\n"
        "    }\n"
        "    # last\n"
        "}\n"
    )


def test_comments_inside_branch_paths_stay_with_their_path():
    text = "model m {\n branch add {\n  conv(4) # wide\n  # the skip\n  | identity # cheap\n }\n}\n"
    assert fmt(text) == (
        "model m {\n"
        "    branch add {\n"
        "        conv(4)  # wide\n"
        "      # the skip\n"
        "      | identity  # cheap\n"
        "    }\n"
        "}\n"
    )


def test_a_trailing_comment_of_a_joined_op_ends_the_joined_line_and_order_is_kept():
    text = "model m {\n repeat 2 {\n  linear(8) # grows\n  # then\n  relu() # kept\n }\n gap\n}\n"
    assert fmt(text).splitlines() == [
        "model m {",
        "    repeat 2 { linear(8) relu }  # grows",
        "    # then",
        "    # kept",
        "    gap",
        "}",
    ]


def test_a_comment_after_code_stays_at_the_end_of_its_line():
    text = "model m { conv(8,) # eight\n bn relu as act # named\n}\ntrain { epochs 3 } # short\n"
    assert fmt(text) == (
        "model m {\n"
        "    conv(8)  # eight\n"
        "    bn\n"
        "    relu as act  # named\n"
        "}\n"
        "\n"
        "train {\n"
        "    epochs 3\n"
        "}  # short\n"
    )


def test_comments_move_with_a_section_put_in_canonical_order():
    text = "# the net\nmodel m { relu }\n# the data\ndata digits # small\n"
    assert fmt(text) == "# the data\ndata digits  # small\n\n# the net\nmodel m {\n    relu\n}\n"
    assert fmt(fmt(text)) == fmt(text)


def test_raw_examples_with_comments_keep_every_comment_and_reach_a_fixed_point():
    for name, text in example_specs():
        once = fmt(text)
        assert sorted(comments_of(once)) == sorted(c.rstrip() for c in comments_of(text)), name
        assert fmt(once) == once, name
