"""What `check` accepts, `run` runs: every spec of the docs, specs/, benchmarks/specs/ and the test
corpus that passes `check` trains one epoch without an error (a spec that needs a data file that
is not here is skipped). Run in-process: a traceback here is an exception that is not a
GrowDSLError, or a GrowDSLError that `check` should have raised."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "lang"))
from lang_examples import example_specs  # noqa: E402

from growdsl import api, lang  # noqa: E402
from growdsl.errors import DataError, GrowDSLError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OTHER_SPECS = sorted((ROOT / "benchmarks" / "specs").glob("*.grow")) + sorted(
    p for p in (ROOT / "tests" / "corpus").rglob("*.grow") if "invalid" not in p.parts
)
CASES = example_specs() + [(p.name, p.read_text(encoding="utf-8")) for p in OTHER_SPECS]
ONE_EPOCH = ["train.epochs=1"]
# Each made smaller where the spec takes the setting (check refuses it elsewhere): a fifth of the
# rows for training, 500 generated rows (images: ResNet-20 on 10,000), and a search's smallest
# useful size (a path-level search's defaults alone train 200 child epochs).
SMALLER = [
    ["data.test=0.8"],
    ["data.n=500"],
    ["search.trials=3"],
    ["search.population=4"],
    ["search.cycles=2"],
    ["search.episodes=1", "search.batch=2", "search.epochs=1"],
]


def _checked(name: str, text: str):
    spec = lang.parse_text(text, name)
    try:
        smaller = lang.apply_overrides(spec, ONE_EPOCH)
        api.check(smaller)
    except GrowDSLError as e:
        pytest.skip(f"check refuses it: {e}")
    for overrides in SMALLER:
        try:
            candidate = lang.apply_overrides(smaller, overrides)
            api.check(candidate)
        except GrowDSLError:
            continue
        smaller = candidate
    return smaller


@pytest.mark.parametrize(("name", "text"), CASES, ids=[n for n, _ in CASES])
def test_a_spec_check_accepts_trains_an_epoch(name, text, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()  # the docs' csv example reads data/iris.csv: 4 features, 3 classes
    rows = ["a,b,c,d,label"] + [f"{i},{i % 5},{i % 7},{i % 3},{i % 3}" for i in range(30)]
    (tmp_path / "data" / "iris.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    spec = _checked(name, text)
    try:
        result = api.run_spec(spec, tmp_path / "run", quiet=True)
    except DataError as e:
        if "download" not in str(e) and "does not exist" not in str(e):
            raise
        pytest.skip(f"its data is not here: {e}")
    assert result.final_metrics["epochs"] >= 1  # one a task for a task sequence
    assert (tmp_path / "run" / "final.grow").is_file()
