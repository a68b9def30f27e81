"""Whether two run directories hold the same result: every tensor of `model.pt` bit for bit, and
every line of `history.jsonl` but its `time`. The check behind "the step computes the same" claims
in docs/benchmarks.md: run one spec at two commits (`git archive <commit> | tar -x -C DIR`, then
`PYTHONPATH=DIR python -m growdsl run SPEC --out ...`) and compare.

    python benchmarks/same_run.py RUN_A RUN_B [RUN_A2 RUN_B2 ...]

Exit status 0 when every pair is the same, 1 otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def _history(run: Path) -> list[dict]:
    lines = (json.loads(line) for line in (run / "history.jsonl").read_text().splitlines())
    return [{k: v for k, v in line.items() if k != "time"} for line in lines]


def same(a: Path, b: Path) -> bool:
    """Print and return whether runs `a` and `b` agree (see the module docstring)."""
    ma = torch.load(a / "model.pt", weights_only=True)
    mb = torch.load(b / "model.pt", weights_only=True)
    tensors = ma.keys() == mb.keys() and all(torch.equal(ma[k], mb[k]) for k in ma)
    ha, hb = _history(a), _history(b)
    grows = sum(line["event"] == "grow" for line in ha)
    print(f"{a} vs {b}: {len(ma)} tensors same: {tensors}; {len(ha)} lines ({grows} grow) same: {ha == hb}")
    return tensors and ha == hb


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]]
    if not paths or len(paths) % 2:
        sys.exit(__doc__)
    results = [same(a, b) for a, b in zip(paths[0::2], paths[1::2], strict=True)]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
