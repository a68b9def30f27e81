"""The specs the language tests run over: every ```grow block of docs/language.md and every spec
in specs/, each made whole (a fragment without a `model` gets a minimal one)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "language.md"
MINIMAL_MODEL = "\nmodel minimal { flatten linear(classes) }\n"


def doc_blocks() -> list[str]:
    return re.findall(r"```grow\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def as_whole_spec(block: str) -> str:
    return block if re.search(r"^\s*model\s", block, flags=re.M) else block + MINIMAL_MODEL


def example_specs() -> list[tuple[str, str]]:
    """(name, text) of every example, doc blocks first."""
    examples = [(f"doc-{i}", as_whole_spec(b)) for i, b in enumerate(doc_blocks())]
    examples += [(p.name, p.read_text(encoding="utf-8")) for p in sorted((ROOT / "specs").glob("*.grow"))]
    return examples
