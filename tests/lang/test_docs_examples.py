"""Every code example in docs/language.md is a working spec (fragments get a minimal model)."""

from __future__ import annotations

import pytest
from lang_examples import doc_blocks, example_specs

from growdsl.lang import parse_text


def test_the_docs_have_examples_for_every_section():
    text = "\n".join(doc_blocks())
    for section in ("data", "block", "model", "train", "grow", "search", "export"):
        assert f"{section} " in text


@pytest.mark.parametrize(("name", "text"), example_specs(), ids=[n for n, _ in example_specs()])
def test_example_parses(name, text):
    spec = parse_text(text, name)
    assert spec.model.body.terms
