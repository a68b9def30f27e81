"""The TextMate grammar (grammars/growdsl.tmLanguage.json, for VS Code and other editors) cannot
drift from the language: its keywords are the lark grammar's, its ops the op table's, its data
sets, transforms, searches and merges the catalogs'; and it colours a real spec as a reader
expects (a small TextMate scanner: at each point the pattern matching earliest wins, ties to
the first listed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from growdsl.grow.policy import KNOWN_TRANSFORMS
from growdsl.ir.ops import OPS
from growdsl.lang.ast import MERGES
from growdsl.run.datasets import CATALOG
from growdsl.search.methods import KNOWN_SEARCHES

ROOT = Path(__file__).parents[2]
TM = json.loads((ROOT / "grammars" / "growdsl.tmLanguage.json").read_text())
LARK = (ROOT / "grammars" / "growdsl.lark").read_text()


def _words(entry: str) -> set[str]:
    """The names of a `\\b(?:a|b|c)\\b` pattern of the grammar's repository."""
    match = re.fullmatch(r"\\b\(\?:([\w|]+)\)\\b", TM["repository"][entry]["match"])
    assert match, TM["repository"][entry]["match"]
    return set(match.group(1).split("|"))


def test_keywords_are_exactly_the_words_of_the_lark_grammar():
    lark_keywords = set(re.findall(r'"([a-z_]+)"', re.sub(r"//[^\n]*", "", LARK)))
    assert _words("keyword") == lark_keywords


@pytest.mark.parametrize(
    ("entry", "names"),
    [("op", OPS), ("transform", KNOWN_TRANSFORMS), ("search", KNOWN_SEARCHES), ("dataset", CATALOG),
     ("merge", MERGES)],
)  # fmt: skip
def test_names_are_exactly_those_the_language_knows(entry, names):
    assert _words(entry) == set(names)


def _scopes(line: str) -> dict[str, str]:
    """Token text -> scope for one line, scanned as a TextMate engine does with the top-level
    patterns (captures give their groups' scopes)."""
    patterns = [TM["repository"][p["include"][1:]] for p in TM["patterns"]]
    compiled = [re.compile(p["match"]) for p in patterns]
    found, pos = {}, 0
    while pos < len(line):
        hits = [(m.start(), i, m) for i, rx in enumerate(compiled) if (m := rx.search(line, pos))]
        if not hits:
            break
        _, i, m = min(hits, key=lambda h: (h[0], h[1]))
        if "captures" in patterns[i]:
            for group, scope in patterns[i]["captures"].items():
                found[m.group(int(group))] = scope["name"]
        else:
            found[m.group(0)] = patterns[i]["name"]
        pos = max(m.end(), pos + 1)
    return found


def test_a_spec_is_coloured_as_a_reader_expects():
    assert _scopes("data digits(test: 0.2)  # the 8x8 digits") == {
        "data": "keyword.control.growdsl",
        "digits": "support.type.dataset.growdsl",
        "test": "variable.parameter.growdsl",
        ":": "punctuation.separator.growdsl",
        "0.2": "constant.numeric.growdsl",
        "# the 8x8 digits": "comment.line.number-sign.growdsl",
    }
    line = _scopes("model mlp { linear(16..128) as hidden1 tanh branch add { relu | identity } }")
    assert line["model"].startswith("keyword") and line["mlp"] == "entity.name.type.growdsl"
    assert line["hidden1"] == "entity.name.tag.growdsl" and line[".."] == "keyword.operator.growdsl"
    assert {line[w] for w in ("linear", "tanh", "relu", "identity")} == {"support.function.op.growdsl"}
    assert line["add"] == "support.constant.merge.growdsl" and line["16"] == "constant.numeric.growdsl"
    grow = _scopes("grow { every 4 epochs until params > 12k split(frac: 0.25) }")
    assert grow["split"] == "support.function.transform.growdsl" and grow["12k"] == "constant.numeric.growdsl"
    assert grow["every"] == grow["epochs"] == grow["until"] == "keyword.control.growdsl"
