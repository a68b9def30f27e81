"""A fixed seed writes the same `search.jsonl` (apart from times) as the code before the one
search loop: random search, PBT-NAS (mixing and mutation) and the path-level controller.

The files in `tests/search/golden/` were written by the code before the refactor (commit b1d4dd3,
where random and PBT had one loop and path-level a second) by running this file as a script,
`python tests/search/test_search_golden.py tests/search/golden`, with that commit's growdsl on
the path; they are that code's logs, never rewritten by the code they check. A change that
changes a search's draws, children or scores on purpose replaces them, and says so:
`pbt_mix.jsonl` was rewritten (branch search-space) when a mixed position whose value both
parents share began exchanging shrink-perturbed weights as the PBT-NAS authors' code does (member
4's fitness changed; everything else is the refactor's log). `pbt_mix.jsonl` and `pbt_mutate.jsonl`
were rewritten again (branch pbt2) when PBT's first population became stratified as the authors'
is (growdsl/search/strata.py): its members are other draws from the first line on; `random.jsonl`
is unchanged (random search draws as before). `pathlevel.jsonl` was rewritten when
the path-level search came to follow the authors' code (MLP actors, the encoder re-run before every
decision, the authors' baseline and clip, children on a fresh SGD with a cosine schedule;
docs/methods/pathlevel.md), by this file run as a script, and again (branch pathlevel2, by the same
run_search call) after the merges, for two reasons that are not run-to-run variation: the merged op
table has one more op (`pad_channels`), the controller embeds one token per op, so its seeded
initial weights differ (its policy starts near uniform, so only member 4's seventh decision
changed); and the file written in between (commit 895f899) came from the pre-fidelity code (its
replace choices read `conv`, a choice that no longer exists), so the merged code could never match
it. The merged code writes this file in every process (test_pathlevel_reproducible.py runs two with
different string hashes). Numbers are
compared to 1e-6 (relative): another CPU may sum a loss in another order."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from cell_search import cell_search

from growdsl.lang import parse_text
from growdsl.search.driver import LOG, run_search

GOLDEN = Path(__file__).parent / "golden"
SPACE = """\
data spirals(n: 300, val: 0.2)
model m {{
    linear(8..24) as a
    choice {{ tanh | relu }}
    repeat 1..2 {{ linear({{8, 12}}) tanh }}
    linear(classes)
}}
train {{ epochs 2 batch 32 optimizer sgd(lr: 0.1, momentum: 0.9) seed 5 device cpu }}
search {search}
"""
PATHLEVEL = cell_search("episodes: 2, batch: 2, epochs: 1, workers: 1", "cpu")
CASES = {
    "random": SPACE.format(search="random(trials: 3, workers: 1)"),
    "pbt_mix": SPACE.format(search="pbt(population: 4, every: 1, replace: 0.25, mix: 0.5, workers: 1)"),
    "pbt_mutate": SPACE.format(search="pbt(population: 4, every: 1, mode: mutate, workers: 1)"),
    "pathlevel": PATHLEVEL,
}


def _untimed(text: str) -> list[dict]:
    return [{k: v for k, v in json.loads(x).items() if k != "time"} for x in text.splitlines()]


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_close, a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return a == b


def _search(name: str, out: Path) -> str:
    run_search(parse_text(CASES[name], f"{name}.grow"), out, quiet=True, in_process=True)
    return (out / LOG).read_text()


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_fixed_seed_writes_the_search_log_the_code_before_the_one_loop_wrote(name, tmp_path):
    mine = _untimed(_search(name, tmp_path / "run"))
    golden = [json.loads(x) for x in (GOLDEN / f"{name}.jsonl").read_text().splitlines()]
    assert [line["event"] for line in mine] == [line["event"] for line in golden]
    for line, expected in zip(mine, golden, strict=True):
        assert _close(line, expected), (line, expected)


if __name__ == "__main__":  # how the golden files were written (see the module docstring)
    import tempfile

    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            lines = _untimed(_search(name, Path(tmp) / name))
            (folder / f"{name}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
