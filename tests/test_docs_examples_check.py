"""Every example in docs/language.md and specs/ means what it says: it lowers and shape-checks
(fragments get a minimal model), except the one the docs show failing, which fails with the
message the docs quote."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "lang"))
from lang_examples import DOC, example_specs  # noqa: E402

from growdsl import api  # noqa: E402
from growdsl.errors import ShapeError  # noqa: E402
from growdsl.ir import infer_shapes  # noqa: E402
from growdsl.lang import parse_text  # noqa: E402

# LANGUAGE.md's res(32) example after a 16-channel stem, and the message the docs quote for it.
REFUSED = "conv(16..64, k: 3) bn relu as stem\n    repeat 1..3 { res(32) }"
DOCUMENTED_FAILURE = (
    "branch add at net.3.0.0: path net.3.0.0.0 gives [32, 8, 8] but path net.3.0.0.1 gives [16, 8, 8]"
)


@pytest.fixture
def iris_csv(tmp_path, monkeypatch):
    """The csv file the docs' csv example reads, as a real file: 4 features, 3 classes."""
    (tmp_path / "data").mkdir()
    rows = ["a,b,c,d,label"] + [f"{i},{i % 5},{i % 7},{i % 3},{i % 3}" for i in range(30)]
    (tmp_path / "data" / "iris.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(("name", "text"), example_specs(), ids=[n for n, _ in example_specs()])
def test_example_lowers_and_shape_checks(name, text, iris_csv):
    spec = parse_text(text, name)
    if REFUSED in text:
        with pytest.raises(ShapeError) as err:
            infer_shapes(api.lower(spec))
        assert DOCUMENTED_FAILURE in str(err.value)
        assert DOCUMENTED_FAILURE in DOC.read_text()
    else:
        infer_shapes(api.lower(spec))
