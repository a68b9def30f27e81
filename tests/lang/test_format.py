"""`format_spec` prints the canonical form: re-parsing it gives the same spec, and it is a fixed point."""

from __future__ import annotations

import pytest
from lang_examples import example_specs

from growdsl.lang import apply_overrides, format_spec, parse_text

EXAMPLES = example_specs()


@pytest.mark.parametrize(("name", "text"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_format_round_trips_and_is_idempotent(name, text):
    spec = parse_text(text, name)
    canonical = format_spec(spec)
    assert parse_text(canonical, "fmt") == spec
    assert format_spec(parse_text(canonical, "fmt")) == canonical


def test_canonical_layout():
    spec = parse_text(
        "export [onnx] grow{every 5 epochs until params>20k split} train{epochs 30 optimizer sgd(lr:0.1)}"
        "model net{conv(16..64,k:{3,5}) bn relu as stem repeat 1..3{res(32)}"
        "choice{conv(16,k:3)|identity} gap flatten linear(classes)}"
        "block res(c){branch add{conv(c,k:3) bn relu|identity} relu} data digits(test:0.2)"
        "# a comment is dropped\n"
    )
    assert format_spec(spec) == (
        "data digits(test: 0.2)\n"
        "\n"
        "block res(c) {\n"
        "    branch add {\n"
        "        conv(c, k: 3) bn relu\n"
        "      | identity\n"
        "    }\n"
        "    relu\n"
        "}\n"
        "\n"
        "model net {\n"
        "    conv(16..64, k: {3, 5})\n"
        "    bn\n"
        "    relu as stem\n"
        "    repeat 1..3 { res(32) }\n"
        "    choice {\n"
        "        conv(16, k: 3)\n"
        "      | identity\n"
        "    }\n"
        "    gap\n"
        "    flatten\n"
        "    linear(classes)\n"
        "}\n"
        "\n"
        "train {\n"
        "    epochs 30\n"
        "    optimizer sgd(lr: 0.1)\n"
        "}\n"
        "\n"
        "grow {\n"
        "    every 5 epochs\n"
        "    until params > 20k\n"
        "    split\n"
        "}\n"
        "\n"
        "export [onnx]\n"
    )


def test_nested_compound_paths_round_trip():
    spec = parse_text(
        "model m { branch concat { repeat 2 { { relu } as inner } as r | choice { relu | gelu } "
        "| { } identity } as b }"
    )
    canonical = format_spec(spec)
    assert "  | choice {" in canonical
    assert parse_text(canonical) == spec


def test_numbers_and_strings_print_as_written():
    spec = parse_text('data csv(path: "a \\"q\\" \\\\ b", test: 2e-1) model m { linear(1.5k) }')
    canonical = format_spec(spec)
    assert 'path: "a \\"q\\" \\\\ b"' in canonical and "2e-1" in canonical and "1.5k" in canonical
    assert parse_text(canonical) == spec


def test_a_call_without_arguments_stays_a_call_in_a_value():
    spec = parse_text("model m { relu } train { schedule step() loss mse }")
    canonical = format_spec(spec)
    assert "schedule step()" in canonical and "loss mse" in canonical
    assert parse_text(canonical) == spec


def test_overridden_specs_format_and_round_trip():
    spec = apply_overrides(
        parse_text("model m { relu }"), ["train.optimizer=adam(lr: 1e-3)", "data.test=0.1"]
    )
    assert parse_text(format_spec(spec)) == spec
