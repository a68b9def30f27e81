"""Every JSON file growdsl writes is strict JSON: a non-finite number is `null`, flagged in
`nonfinite` (growdsl/strict_json.py)."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

from growdsl import strict_json
from growdsl.lang import parse_text
from growdsl.run.rundir import append_history, read_history, write_history
from growdsl.run.tensorboard import growth_text


def test_nonfinite_numbers_become_null_and_are_named():
    record = {"loss": math.nan, "acc": 0.5, "detail": {"eigenvalues": [-1.0, -math.inf], "s": (math.inf,)}}
    out = strict_json.loads(strict_json.dumps(record))
    assert out == {
        "loss": None,
        "acc": 0.5,
        "detail": {"eigenvalues": [-1.0, None], "s": [None]},
        "nonfinite": ["loss", "detail.eigenvalues.1", "detail.s.0"],
    }


def test_finite_records_are_written_as_json_dumps_writes_them():
    record = {"event": "epoch", "loss": 0.25, "acc": None, "nodes": [1, 2]}
    assert strict_json.dumps(record) == json.dumps(record)
    assert "nonfinite" not in strict_json.loads(strict_json.dumps(record))


def test_a_nonfinite_number_with_no_object_to_flag_it_in_is_refused():
    with pytest.raises(ValueError, match="non-finite"):
        strict_json.dumps([1.0, math.nan])


def test_history_lines_are_strict_json(tmp_path):
    write_history(tmp_path, [{"event": "epoch", "epoch": 1, "loss": math.inf, "params": 10}])
    append_history(
        tmp_path, [{"event": "epoch", "epoch": 2, "loss": math.nan, "held_out_loss": math.nan, "params": 10}]
    )
    lines = [strict_json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert lines[0]["loss"] is None and lines[0]["nonfinite"] == ["loss"]
    assert lines[1]["nonfinite"] == ["loss", "held_out_loss"]
    assert read_history(tmp_path) == lines


def test_graph_exports_are_strict_json(tmp_path):
    from growdsl import api
    from growdsl.export import write_exports

    spec = parse_text("data spirals(n: 100)\nmodel m { linear(4) relu linear(classes) }\n")
    graph = api.lower(spec)
    graph[graph.ops()[0]]["args"]["scale"] = math.nan  # a non-finite attribute, as a bug might leave
    write_exports(tmp_path, spec, graph, api.build_model(graph), ("graphml",))
    data = strict_json.loads((tmp_path / "graph.json").read_text())
    assert data["nonfinite"] == [f"nodes.{[n['id'] for n in data['nodes']].index(graph.ops()[0])}.args.scale"]
    assert "NaN" not in (tmp_path / "graph.graphml").read_text()


def test_the_strict_reader_refuses_what_python_writes_for_nan():
    with pytest.raises(ValueError, match="NaN"):
        strict_json.loads(json.dumps({"loss": math.nan}))


def test_no_module_writes_json_but_through_the_strict_helper():
    """`json.dump`/`json.dumps` of the standard library write NaN as `NaN`; a module that imports
    `json` may read with it, and writes through growdsl/strict_json.py."""
    root = Path(strict_json.__file__).parent
    offenders = []
    for path in sorted(set(root.rglob("*.py")) - {Path(strict_json.__file__)}):
        tree = ast.parse(path.read_text())
        stdlib = any(isinstance(n, ast.Import) and any(a.name == "json" and a.asname is None for a in n.names)
                     for n in ast.walk(tree))  # fmt: skip
        for node in ast.walk(tree):
            called = node.func if isinstance(node, ast.Call) else None
            if (
                stdlib
                and isinstance(called, ast.Attribute)
                and isinstance(called.value, ast.Name)
                and (called.value.id, called.attr) in (("json", "dump"), ("json", "dumps"))
            ):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == [], "stdlib json writes (use growdsl.strict_json.dumps): " + ", ".join(offenders)


def test_tensorboard_growth_text_holds_strict_json():
    text = growth_text({"transform": "split", "node": "m.h", "detail": {"score": -math.inf, "added": 2}})
    embedded = text.split("`")[-2]
    assert strict_json.loads(embedded) == {"score": None, "added": 2, "nonfinite": ["score"]}
