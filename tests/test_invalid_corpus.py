"""Every file in tests/corpus/invalid is a spec that must fail with one precise, quotable error.

Each file starts with `# expect: LINE:COL: <part of the message>` (LINE and COL count in the file
itself), optionally followed by `# hint: <part of the rendered error>` lines (for the `expected`
and did-you-mean parts). The spec is checked as `growdsl check` would (`growdsl.api.check_file`)
when the API exists, else parsed with `growdsl.lang.load`.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

from growdsl.errors import GrowDSLError

CORPUS = Path(__file__).parent / "corpus" / "invalid"
CASES = sorted(CORPUS.glob("*.grow"))
_EXPECT = re.compile(r"# expect: (\d+):(\d+): (.+)")


def _check(path: Path) -> None:
    if importlib.util.find_spec("growdsl.api") is not None:
        importlib.import_module("growdsl.api").check_file(path)
    else:
        importlib.import_module("growdsl.lang").load(path)


def test_corpus_holds_the_syntax_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_invalid_spec_fails_at_its_place_with_its_message(path: Path):
    lines = path.read_text(encoding="utf-8").splitlines()
    expect = _EXPECT.fullmatch(lines[0].strip())
    assert expect, f"{path.name}: first line must be '# expect: LINE:COL: message'"
    line, col, message = int(expect[1]), int(expect[2]), expect[3].strip()
    hints = [x.removeprefix("# hint:").strip() for x in lines[1:] if x.startswith("# hint:")]

    with pytest.raises(GrowDSLError) as info:
        _check(path)
    err = info.value
    span = getattr(err, "span", None)
    assert span is not None, f"{path.name}: error without a span: {err}"
    assert (span.line, span.col) == (line, col), f"{path.name}: {err}"
    assert message in str(err)
    assert Path(span.file).name == path.name

    rendered = err.render()
    quoted = lines[line - 1]
    assert quoted in rendered
    caret_line = rendered.split(quoted, 1)[1].splitlines()[1]
    assert caret_line.strip().startswith("^")
    for hint in hints:
        assert hint in rendered, f"{path.name}: {hint!r} not in\n{rendered}"
