"""Every example in the docs means what it says.

- Every `.grow` example in docs/language.md and specs/ lowers and shape-checks (fragments get a
  minimal model), except the one the docs show failing, which fails with the message the docs quote.
- Every `$ growdsl ...` line of a ```console block in README.md and docs/ prints what the docs show:
  it runs (in a folder holding a copy of specs/ and docs/examples/), and its output, with run folder
  names masked, is compared with the lines that follow it in the block.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
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
    """The csv file the docs' csv example reads, as a real file: 4 features, 3 classes; and the
    class folders of the docs' image folder."""
    (tmp_path / "data").mkdir()
    rows = ["a,b,c,d,label"] + [f"{i},{i % 5},{i % 7},{i % 3},{i % 3}" for i in range(30)]
    (tmp_path / "data" / "iris.csv").write_text("\n".join(rows) + "\n")
    for label in ("cat", "dog"):  # the docs' image folder: check lists its classes
        (tmp_path / "data" / "imagenet" / "train" / label).mkdir(parents=True)
        from PIL import Image  # a class folder must hold an image (the `folder` scan refuses empty ones)

        Image.new("RGB", (4, 4)).save(tmp_path / "data" / "imagenet" / "train" / label / "0.png")
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


# ------------------------------------------------------------------ console examples

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```console\n(.*?)^```", re.S | re.M)
# a default run folder name carries the time it started: runs/mlp-20261126-010512(-2)
MASKS = [(re.compile(r"runs/([\w.]+)-\d{8}-\d{6}(-\d+)?"), r"runs/\1-<time>")]


def console_examples() -> list[tuple[str, str, str]]:
    """(where, command, expected output) for every `$ ` line of every console block."""
    examples = []
    for doc in DOCS:
        text = doc.read_text()
        for block in BLOCK.finditer(text):
            line = text[: block.start()].count("\n") + 1
            for chunk in re.split(r"^\$ ", block.group(1), flags=re.M)[1:]:
                command, _, expected = chunk.partition("\n")
                examples.append((f"{doc.relative_to(ROOT)}:{line}", command, expected))
    return examples


def _masked(text: str) -> str:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text.rstrip("\n")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """What the examples name: specs/ and the files of docs/examples/ (bad.grow)."""
    folder = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "specs", folder / "specs")
    for example in (ROOT / "docs" / "examples").iterdir():
        shutil.copy(example, folder / example.name)
    return folder


def test_the_docs_have_console_examples_of_check_run_and_errors():
    commands = [command for _, command, _ in console_examples()]
    assert {
        "growdsl check specs/quickstart.grow",
        "growdsl run specs/quickstart.grow",
        "growdsl check bad.grow",
    } <= set(commands)


@pytest.mark.parametrize(
    ("where", "command", "expected"), console_examples(), ids=[w for w, _, _ in console_examples()]
)
def test_console_example_prints_what_the_docs_show(where, command, expected, workspace):
    program, *args = shlex.split(command)
    assert program == "growdsl", f"{where}: only growdsl commands are run"
    done = subprocess.run(
        [sys.executable, "-m", "growdsl.cli", *args],
        cwd=workspace,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's growdsl, from any folder
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert _masked(done.stdout + done.stderr) == _masked(expected), where
