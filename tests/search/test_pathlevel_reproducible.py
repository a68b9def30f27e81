"""A path-level search is a function of its spec and seed: two separate processes, whose string
hashes differ (PYTHONHASHSEED), write the same `search.jsonl` apart from times. (Within one
process the resume test in test_pathlevel_search.py pins the same; only a second process shows
what depends on the process: hash order of sets of strings, torch's global generator, an op
table that grew before the controller was made.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cell_search import cell_search

SPEC = cell_search("episodes: 2, batch: 2, epochs: 1, workers: 1")


def _untimed(run_dir: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run_dir / "search.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k != "time"} for line in lines]


def test_two_processes_with_other_string_hashes_write_the_same_search_log(tmp_path):
    spec = tmp_path / "cell.grow"
    spec.write_text(SPEC)
    runs = {seed: tmp_path / f"hash{seed}" for seed in ("1", "2")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "growdsl", "run", str(spec), "--out", str(out), "--quiet"],
            # side by side on the cores: OpenMP threads that spin while they wait would starve each
            # other (measured 40x slower on a loaded 2-core machine); sleeping changes no result
            env={**os.environ, "PYTHONHASHSEED": seed, "OMP_WAIT_POLICY": "PASSIVE"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for seed, out in runs.items()
    ]
    for process in processes:
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output
    first, second = (_untimed(out) for out in runs.values())
    children = [line for line in first if line["event"] == "evaluate"]
    assert len(children) == 4 and any(child["decisions"] for child in children)
    assert first == second


def test_a_plugin_loaded_before_the_controller_leaves_its_tokens_as_they_are():
    """The controller's tokens (and so its seeded initial weights) are the built-in ops' alone: a
    process that registered a plugin's op before importing it builds the same controller."""
    script = (
        "from torch import nn\n"
        "from growdsl.plugins import register_op\n"
        "from growdsl.ir.ops import BUILTIN_OPS\n"
        "register_op('swish3', lambda args, inp: nn.SiLU(), transparent=True)\n"
        "from growdsl.search.controller import TOKENS\n"
        "assert 'op:swish3' not in TOKENS, TOKENS\n"
        "assert [t for t in TOKENS if t.startswith('op:')] == [f'op:{n}' for n in sorted(BUILTIN_OPS)]\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
