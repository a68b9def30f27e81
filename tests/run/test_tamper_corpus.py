"""The tamper corpus: a finished run's files damaged one way at a time (a line cut short as a full
disk leaves it, lines that are not JSON, not UTF-8 or not objects, edits with values of the wrong
type, a graph or metrics file of the wrong shape, a file that is a folder, a plain pickle for a
checkpoint), and every command that reads the damaged file run on it. The promise of docs/cli.md:
a clear message naming the file (and, in a JSON-lines file, the line) with exit code 2, never a
traceback, and never a silently different result.
"""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from growdsl.cli import main
from growdsl.lang import parse_text
from growdsl.run import run

GROWING = """
data spirals(n: 200)
model m { linear(4..32) as hidden relu linear(classes) }
train { epochs 3 batch 32 optimizer sgd(lr: 0.1) seed 1 device cpu }
grow { every 1 epochs split(frac: 0.5, method: exact) }
"""

# which commands read which file (`export` reads the checkpoint of a run, `resume` its checkpoint
# and identity; `history` without --replay reads the history alone)
READERS = {
    "history.jsonl": (["history"], ["history", "--replay"], ["report"], ["compare"]),
    "graph.json": (["history", "--replay"], ["report"]),
    "metrics.json": (["report"], ["compare"]),
    "spec.grow": (["history", "--replay"],),
    "checkpoint.pt": (["export", "--format", "graphml"], ["resume"]),
    "run.json": (["resume"],),
}


def _lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def _write_lines(run_dir: Path, records: list) -> None:
    (run_dir / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _grow_line(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def tamper(run_dir: Path) -> None:
        records = _lines(run_dir)
        change(next(r for r in records if r["event"] == "grow"))
        _write_lines(run_dir, records)

    return tamper


def _epoch_line(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def tamper(run_dir: Path) -> None:
        records = _lines(run_dir)
        change(next(r for r in records if r["event"] == "epoch"))
        _write_lines(run_dir, records)

    return tamper


def _append_raw(raw: bytes) -> Callable[[Path], None]:
    def tamper(run_dir: Path) -> None:
        with open(run_dir / "history.jsonl", "ab") as f:
            f.write(raw)

    return tamper


def _replace(name: str, raw: bytes) -> Callable[[Path], None]:
    return lambda run_dir: (run_dir / name).write_bytes(raw)


def _into_folder(name: str) -> Callable[[Path], None]:
    def tamper(run_dir: Path) -> None:
        (run_dir / name).unlink()
        (run_dir / name).mkdir()

    return tamper


def _cut_last_line(run_dir: Path) -> None:
    text = (run_dir / "history.jsonl").read_text()
    (run_dir / "history.jsonl").write_text(text[: len(text) - 40])


def _donor(donor: object) -> Callable[[Path], None]:
    def tamper(run_dir: Path) -> None:
        edit = {"kind": "graft", "node": "m.hidden", "donor": donor}
        _write_lines(run_dir, [{"event": "sample", "epoch": 0, "member": 0, "edit": edit}, *_lines(run_dir)])

    return tamper


H = "history.jsonl"
EDGE_TO_NOWHERE = json.dumps(
    {
        "root": "m",
        "input_shape": [2],
        "classes": 2,
        "nodes": [{"id": "m", "kind": "seq"}],
        "edges": [{"source": "m", "target": "x", "pos": 0}],
    }
).encode()

# name -> (file, tamper, the text the message must hold; None: the damage is harmless and ignored)
TAMPERS: dict[str, tuple[str, Callable[[Path], None], str | None]] = {
    # a full disk or a kill mid-append leaves the last line without its newline: not yet written
    "history_last_line_cut_short": (H, _cut_last_line, None),
    "history_line_a_list": (H, _append_raw(b"[1, 2]\n"), "history.jsonl:6:"),
    "history_line_not_json": (H, _append_raw(b"{not json\n"), "history.jsonl:6:"),
    "history_line_not_utf8": (H, _append_raw(b'{"event": "\xff\xfe"}\n'), "history.jsonl:6:"),
    "history_line_nan": (H, _append_raw(b'{"event": "epoch", "epoch": NaN}\n'), "history.jsonl:6:"),
    "history_line_without_event": (H, _append_raw(b'{"epoch": 3}\n'), "history.jsonl:6:"),
    "history_a_folder": (H, _into_folder("history.jsonl"), "history.jsonl"),
    "widen_added_a_string": (H, _grow_line(lambda r: r["edit"].update(added="abc")), ":2:"),
    "widen_added_nested": (H, _grow_line(lambda r: r["edit"].update(added=[[1]])), ":2:"),
    "widen_added_a_float": (H, _grow_line(lambda r: r["edit"].update(added=[1.5])), ":2:"),
    "widen_added_a_bool": (H, _grow_line(lambda r: r["edit"].update(added=[True])), ":2:"),
    "widen_node_a_number": (H, _grow_line(lambda r: r["edit"].update(node=5)), ":2:"),
    "grow_edit_a_list": (H, _grow_line(lambda r: r.update(edit=[1])), ":2:"),
    "grow_without_transform": (H, _grow_line(lambda r: r.pop("transform")), ":2:"),
    "grow_params_a_string": (H, _grow_line(lambda r: r.update(params_after="many")), ":2:"),
    "graft_donor_not_a_subtree": (H, _donor({"x": 1}), "history.jsonl:1:"),
    "graft_donor_nodes_not_a_list": (H, _donor({"nodes": 5, "edges": []}), ":1:"),
    "epoch_values_strings": (
        H,
        _epoch_line(lambda r: r.update(loss="low", acc="high", params="many")),
        "history.jsonl:1:",
    ),
    "epoch_number_a_string": (H, _epoch_line(lambda r: r.update(epoch="one")), ":1:"),
    "graph_nodes_a_number": ("graph.json", _replace("graph.json", b'{"nodes": 5}'), "graph.json"),
    "graph_a_list": ("graph.json", _replace("graph.json", b"[]"), "graph.json"),
    "graph_not_json": ("graph.json", _replace("graph.json", b"{"), "graph.json"),
    "graph_edge_to_nowhere": ("graph.json", _replace("graph.json", EDGE_TO_NOWHERE), "graph.json"),
    "metrics_a_list": ("metrics.json", _replace("metrics.json", b"[]"), "metrics.json"),
    "metrics_not_utf8": ("metrics.json", _replace("metrics.json", b"\xff"), "metrics.json"),
    "metrics_accuracy_a_string": ("metrics.json", _replace("metrics.json", b'{"test_acc": "x"}'), "metrics"),
    "spec_not_a_spec": ("spec.grow", _replace("spec.grow", b"model {"), "spec.grow"),
    "checkpoint_a_plain_pickle": (
        "checkpoint.pt",
        _replace("checkpoint.pt", pickle.dumps({"e": 1})),
        "checkpoint",
    ),
    "checkpoint_a_folder": ("checkpoint.pt", _into_folder("checkpoint.pt"), "checkpoint"),
    "identity_a_list": ("run.json", _replace("run.json", b"[]"), "run.json"),
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A run that grew after its first two epochs (five history lines: epoch, grow, epoch, grow,
    epoch); each case tampers with a copy."""
    root = tmp_path_factory.mktemp("tamper")
    result = run(parse_text(GROWING, str(root / "m.grow")), root / "run", quiet=True)
    assert sum(r["event"] == "grow" for r in result.history) >= 1 and len(_lines(result.dir)) == 5
    return result.dir


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_every_reader_of_a_tampered_file_says_which_file_and_exits_2(name, finished_run, tmp_path):
    file, tamper, message = TAMPERS[name]
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir, ignore=shutil.ignore_patterns("run.lock"))
    tamper(run_dir)
    for command in READERS[file]:
        args = [*command[:1], str(run_dir), *command[1:]]
        if command == ["compare"]:
            args.append(str(finished_run))
        result = CliRunner().invoke(main, args)
        assert isinstance(result.exception, SystemExit | None), (
            f"{command} on {name}: {result.exception!r}\n{result.output}"
        )
        assert "Traceback" not in result.output
        if message is None:
            assert result.exit_code == 0, f"{command} on {name}: {result.output}"
        else:
            assert result.exit_code == 2, f"{command} on {name}: exit {result.exit_code}\n{result.output}"
            assert message in result.output, f"{command} on {name}: {result.output}"


def test_the_corpus_covers_every_file_the_readers_read():
    assert {file for file, _, _ in TAMPERS.values()} == set(READERS)
