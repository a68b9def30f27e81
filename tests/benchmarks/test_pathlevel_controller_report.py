"""The report of benchmarks/pathlevel_controller.py: seeds paired only when both arms finished, the
paired difference's interval and t by hand, records of other settings left out."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import pathlevel_controller as pc  # noqa: E402

T2 = 4.302653  # Student t, two-sided 95 %, 2 degrees of freedom (to 7 digits, from tables)
SETTINGS = {"episodes": 2, "batch": 2, "epochs": 1, "base_epochs": 4}


def _record(seed: int, arm: str, late: float, **settings) -> dict:
    children = [[1, 1, 0.5, 10], [1, 2, 0.6, 10], [2, 3, late, 10], [2, 4, late, 10]]
    return {**SETTINGS, **settings, "seed": seed, "arm": arm, "children": children, "base val": 0.4,
            "best member": 3, "best test": 0.7, "seconds": 60.0}  # fmt: skip


def test_the_paired_difference_is_the_mean_of_the_seeds_differences_with_its_t_interval():
    late = {0: (0.80, 0.70), 1: (0.75, 0.74), 2: (0.90, 0.85)}
    records = [_record(s, arm, v) for s, pair in late.items() for arm, v in zip(pc.ARMS, pair, strict=True)]
    records.append(_record(3, "treelstm", 0.99))  # its random arm never finished: not paired
    records.append(_record(0, "random", 0.10, epochs=2))  # another size: not this report's
    text = pc.report(records, SETTINGS)
    diffs = [a - b for a, b in late.values()]
    mean, se = statistics.mean(diffs), statistics.stdev(diffs) / 3**0.5
    expected = f"{mean:+.4f} [{mean - T2 * se:+.4f}, {mean + T2 * se:+.4f}], t = {mean / se:.2f} (df 2)"
    assert f"second-half val, paired over 3 seeds: {expected}" in text
    assert "seeds [0, 1, 2]" in text and "40 per arm" not in text and "(4 per arm and seed)" in text


def test_a_report_before_any_seed_has_both_arms_says_so():
    assert pc.report([_record(0, "treelstm", 0.8)], SETTINGS) == "no seed has both arms finished yet"
