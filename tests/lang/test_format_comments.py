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


def relaid(draw, tokens: list[str], tag: int) -> tuple[str, list[str]]:
    """`tokens` laid out anew: each gap a space or a line break, a trailing comma added before some
    `)` and `]`, comments at random line ends and on lines of their own; also the comments."""
    parts, comments = [], []
    for i, token in enumerate(tokens):
        comment = f"# c{tag}.{i} {{ | }} ( ) #"
        if draw(st.integers(0, 5)) == 0:
            parts.append(f"\n{comment}\n")
            comments.append(comment)
        if token in (")", "]") and tokens[i - 1] not in ("(", "[") and draw(st.booleans()):
            parts.append(",")
        parts.append(token)
        gap = draw(st.sampled_from(["space", "newline", "trailing"]))
        if gap == "trailing":
            comment = comment.replace("#", "#:", 1)
            comments.append(comment)
        parts.append({"space": " ", "newline": "\n", "trailing": f"  {comment}\n"}[gap])
    return "".join(parts), comments


@st.composite
def relaid_with_comments(draw) -> tuple[str, list[str]]:
    """A canonical example relaid with comments, its sections shuffled; also the comments in the
    order `fmt` must give them (each section's in order, the sections in canonical order)."""
    sections = draw(st.sampled_from(CANONICAL)).split("\n\n")
    laid = [relaid(draw, code_tokens(section), k) for k, section in enumerate(sections)]
    order = draw(st.permutations(range(len(laid))))
    return "\n".join(laid[k][0] for k in order), [c for _, cs in laid for c in cs]


@settings(max_examples=150, deadline=None)
@given(relaid_with_comments())
def test_comments_survive_once_in_order_and_formatting_is_a_fixed_point(case):
    source, comments = case
    once = fmt(source)
    assert comments_of(once) == comments
    assert parse_text(once) == parse_text(source)
    assert fmt(once) == once


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([text for _, text in example_specs()]), st.data())
def test_comments_added_to_the_examples_as_written_all_survive_a_fixed_point(text, data):
    lines = []
    for i, line in enumerate(text.splitlines()):
        if data.draw(st.booleans()):
            lines.append(f"# own {i}")
        lines.append(line + (f"  # end {i}" if data.draw(st.booleans()) else ""))
    source = "\n".join(lines)
    once = fmt(source)
    assert sorted(comments_of(once)) == sorted(c.rstrip() for c in comments_of(source))
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


def test_comments_after_a_re_escaped_string_keep_their_places():
    text = 'model m {\n conv(8, note: "a\tb") # tab\n relu() # first\n conv(8) # second\n}\n'
    assert fmt(text).splitlines() == [
        "model m {",
        '    conv(8, note: "a\\tb")  # tab',
        "    relu  # first",
        "    conv(8)  # second",
        "}",
    ]


def test_a_comment_whose_tokens_are_dropped_stays_in_its_section_when_sections_move():
    """`digits()` prints as `digits`: the comment inside the dropped parentheses has no kept token
    after it in its section, so it ends the `data` line rather than landing above `train`."""
    text = "data digits(\n  # about digits\n)\ntrain { epochs 3 }\nmodel m { linear(2) }\n"
    assert fmt(text).splitlines()[:3] == ["data digits  # about digits", "", "model m {"]
    assert fmt(fmt(text)) == fmt(text)
