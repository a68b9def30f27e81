"""`growdsl history` lists every edit a run's history holds: exactly the events replay applies
(growth steps, a search member's draws, crossovers and path-level changes), none dropped."""

from __future__ import annotations

import json

from click.testing import CliRunner

from growdsl.cli import main
from growdsl.run.replay import EDIT_EVENTS

RELU = {"args": {}, "id": "*", "kind": "op", "label": None, "op": "relu"}
GRAFT = {"kind": "graft", "node": "m.1", "donor": {"nodes": [RELU], "edges": []}}
INSERT = {"kind": "insert", "parent": "m.c1", "pos": 1, "op": "identity", "args": {}}
LINES = [
    {"event": "sample", "epoch": 0, "member": 3, "edit": GRAFT},
    {"event": "epoch", "epoch": 1, "loss": 0.5, "params": 10, "flops": 20},
    {"event": "mix", "epoch": 2, "member": 3, "parents": [1, 2], "positions": ["m.1"], "edit": GRAFT},
    {"event": "pathlevel", "epoch": 2, "member": 3, "edit": {"kind": "several", "edits": [INSERT, INSERT]}},
    {
        "event": "grow",
        "epoch": 3,
        "transform": "split",
        "node": "m.0",
        "params_before": 10,
        "params_after": 12,
        "score": 1.0,
        "edit": {"kind": "widen", "node": "m.0", "added": [None]},
        "delta_out": 0.0,
        "detail": {},
    },  # fmt: skip
]


def test_history_lists_one_line_per_edit_of_every_event_replay_applies(tmp_path):
    (tmp_path / "history.jsonl").write_text("".join(json.dumps(line) + "\n" for line in LINES))
    result = CliRunner().invoke(main, ["history", str(tmp_path)])
    assert result.exit_code == 0, result.output
    listed = result.output.strip().splitlines()
    edits = [line for line in LINES if line["event"] in EDIT_EVENTS]
    assert len(listed) == len(edits) == 4
    assert "sample   graft(node: m.1)" in listed[0] and "mix      graft(node: m.1)" in listed[1]
    assert "pathlevel several(insert(parent: m.c1" in listed[2] and listed[2].count("insert(") == 2
    assert "split    widen(node: m.0, added: [None])  params 10 -> 12" in listed[3]
