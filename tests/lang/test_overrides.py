"""`apply_overrides`: `--set key=value` replaces or adds settings; mistakes point into the item."""

from __future__ import annotations

import pytest

from growdsl.errors import SpecError
from growdsl.lang import Arg, Call, Name, Num, Setting, Str, apply_overrides, parse_text

SPEC = parse_text(
    "data digits(test: 0.2)\nmodel m { relu }\ntrain { epochs 30 batch 64 }\nsearch random(trials: 20)"
)


def test_train_settings_are_replaced_in_place_or_added_at_the_end():
    spec = apply_overrides(SPEC, ["train.epochs=5", "train.optimizer=adam(lr: 1e-3)"])
    assert [s.name for s in spec.train.settings] == ["epochs", "batch", "optimizer"]
    assert spec.train.settings[0] == Setting("epochs", Num(5, "5"))
    assert spec.train.settings[2].value == Call("adam", (Arg("lr", Num(0.001, "1e-3")),))


def test_train_section_is_created_when_missing():
    spec = apply_overrides(parse_text("model m { relu }"), ["train.seed=1"])
    assert spec.train.settings == (Setting("seed", Num(1, "1")),)


def test_data_options_and_whole_data_call():
    spec = apply_overrides(SPEC, ["data.test=0.1", 'data.root="x"'])
    assert spec.data.keywords == {"test": Num(0.1, "0.1"), "root": Str("x")}
    assert apply_overrides(SPEC, ["data=mnist"]).data == Call("mnist")
    assert apply_overrides(parse_text("model m { relu }"), ["data.test=0.5"]).data.name == "digits"


def test_search_options_and_whole_search_call():
    assert apply_overrides(SPEC, ["search.trials=3"]).search.method.keywords == {"trials": Num(3, "3")}
    spec = apply_overrides(SPEC, ["search=pbt(population: 4, mix: layer)"])
    assert spec.search.method.keywords["mix"] == Name("layer")


def test_later_items_win_and_the_input_spec_is_untouched():
    spec = apply_overrides(SPEC, ["train.epochs=5", "train.epochs=7"])
    assert spec.train.settings[0].value == Num(7, "7")
    assert SPEC.train.settings[0].value == Num(30, "30")


def test_value_may_hold_an_equals_sign_in_a_string():
    assert apply_overrides(SPEC, ['data.root="a=b"']).data.keywords["root"] == Str("a=b")


@pytest.mark.parametrize(
    ("item", "col", "message"),
    [
        ("train.epochs", 1, "has no '='"),
        ("model.name=x", 1, "unknown --set section 'model'"),
        ("trian.epochs=3", 1, "did you mean 'train'?"),
        ("train=3", 1, "train needs a setting"),
        ("train.epochs=", 13, "has no value"),
        ("train.epochs=[1,", 17, "unexpected end of file"),
        ("train.epochs=3 4", 16, "unexpected '4'"),
        ("train.lr=1x", 11, "bad number suffix 'x'"),
        ("data=3", 6, "expected a name or a call"),
        ("a b=3", 1, "bad --set key"),
    ],
)
def test_bad_items_are_spec_errors_pointing_into_the_item(item, col, message):
    with pytest.raises(SpecError) as info:
        apply_overrides(SPEC, [item])
    err = info.value
    assert (err.span.file, err.span.line, err.span.col) == ("--set", 1, col)
    assert message in str(err)
    assert item in err.render()


def test_search_option_without_a_search_section_says_how_to_add_one():
    with pytest.raises(SpecError) as info:
        apply_overrides(parse_text("model m { relu }"), ["search.trials=3"])
    assert "search=random" in info.value.hint
