"""The CLI as a user meets it: exit codes, messages without tracebacks, files on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from growdsl.cli import main

SPECS = Path(__file__).parents[2] / "specs"

TINY = """\
data digits(test: 0.2)
model tiny {
    flatten
    linear(8..32) as hidden  relu
    linear(classes)
}
train {
    epochs 2
    batch 128
    optimizer sgd(lr: 0.1)
    seed 0
}
"""


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.grow"
    path.write_text(TINY)
    return path


def test_run_in_a_real_subprocess_writes_the_run_directory(tiny: Path, tmp_path: Path):
    out = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "growdsl.cli",
            "run",
            str(tiny),
            "--out",
            str(out),
            "--quiet",
            "--set",
            "train.epochs=1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout and "1 epochs" in done.stdout
    for name in (
        "spec.grow",
        "history.jsonl",
        "checkpoint.pt",
        "model.pt",
        "final.grow",
        "graph.json",
        "report.html",
        "report.png",
    ):
        assert (out / name).is_file(), name
    lines = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    epochs = [r for r in lines if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1]
    assert set(epochs[0]) >= {"loss", "acc", "params", "flops", "time"}
    assert invoke("check", str(out / "final.grow")).exit_code == 0  # final.grow re-parses


def test_a_spec_mistake_exits_2_with_its_place_and_no_traceback(tmp_path: Path):
    bad = tmp_path / "bad.grow"
    bad.write_text("data digits\nmodel m {\n  flatten\n  lineer(8) relu\n}\n")
    done = subprocess.run(
        [sys.executable, "-m", "growdsl.cli", "check", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert f"{bad}:4:3: unknown op 'lineer': did you mean 'linear'?" in done.stderr
    assert "lineer(8) relu" in done.stderr and "^" in done.stderr
    assert "Traceback" not in done.stderr


def test_check_prints_a_one_line_summary(tiny: Path):
    result = invoke("check", str(tiny))
    assert result.exit_code == 0
    assert "ok: model tiny, input [1, 8, 8] -> output [10]" in result.output
    assert "1 growable" in result.output


def test_show_prints_shapes_and_writes_dot(tiny: Path, tmp_path: Path):
    dot = tmp_path / "g.dot"
    result = invoke("show", str(tiny), "--dot", str(dot))
    assert result.exit_code == 0
    assert "tiny.hidden" in result.output and "width 8..32" in result.output
    assert "[64] -> [8]" in result.output
    assert dot.read_text().lstrip().startswith("digraph")


def test_fmt_write_is_idempotent_and_check_detects_drift(tiny: Path):
    assert invoke("fmt", "--check", str(tiny)).exit_code == 1
    assert invoke("fmt", "-w", str(tiny)).exit_code == 0
    once = tiny.read_text()
    assert invoke("fmt", "-w", str(tiny)).exit_code == 0
    assert tiny.read_text() == once
    assert invoke("fmt", "--check", str(tiny)).exit_code == 0
    assert invoke("fmt", str(tiny)).output == once


def test_a_bad_set_key_exits_2_naming_it(tiny: Path):
    result = invoke("check", str(tiny), "--set", "train.epochz=3")
    assert result.exit_code == 2
    assert "epochz" in result.output and "epochs" in result.output


def test_a_grow_block_with_a_bad_pathlevel_option_fails_at_check_at_its_place(tiny: Path):
    tiny.write_text(TINY + "grow {\n    every 2 epochs\n    pathlevel(ops: [replicate])\n}\n")
    result = invoke("check", str(tiny))
    assert result.exit_code == 2
    assert "tiny.grow:15:20:" in result.output and "pathlevel option 'ops'" in result.output
    assert "replicate_add" in result.output


def test_run_refuses_a_non_empty_out_and_leaves_it_untouched(tiny: Path, tmp_path: Path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = invoke("run", str(tiny), "--out", str(out), "--quiet")
    assert result.exit_code == 2
    assert "--force" in result.output
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"


def test_resume_of_a_corrupt_checkpoint_exits_2(tmp_path: Path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    result = invoke("resume", str(tmp_path))
    assert result.exit_code == 2
    assert "checkpoint" in result.output.lower()


def test_run_resume_and_export_through_the_cli(tiny: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert invoke("run", str(tiny), "--out", str(out), "--quiet").exit_code == 0
    result = invoke("resume", str(out), "--quiet")  # already finished: nothing more to train
    assert result.exit_code == 0, result.output
    result = invoke("export", str(out), "--format", "dot", "--format", "graphml", "--format", "pt2")
    assert result.exit_code == 0, result.output
    for name in ("graph.dot", "graph.graphml", "model.pt2"):
        assert (out / name).is_file()


def test_every_example_spec_checks():
    for spec in sorted(SPECS.glob("*.grow")):
        result = invoke("check", str(spec))
        assert result.exit_code == 0, (spec, result.output)


def test_resume_keeps_the_device_a_run_was_started_with(tiny: Path, tmp_path: Path):
    tiny.write_text(TINY.replace("seed 0", "seed 0\n    device cuda"))  # the spec asks for a GPU
    out = tmp_path / "run"
    from growdsl import api
    from growdsl.run import run

    run(api.load(tiny), out, device="cpu", quiet=True, epochs_limit=1)  # started with --device cpu
    result = invoke("resume", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    assert invoke("resume", str(out), "--device", "cpu", "--quiet").exit_code == 0


def test_a_run_never_overwrites_its_own_spec(tiny: Path):
    before = tiny.read_text()
    tiny.rename(tiny.parent / "spec.grow")
    spec = tiny.parent / "spec.grow"
    result = invoke("run", str(spec), "--out", str(spec.parent), "--force", "--quiet")
    assert result.exit_code == 2 and "overwrite its own spec" in result.output
    assert spec.read_text() == before


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("train.epochs=1e400", "whole number"),
        ("train.seed=4294967296", "[0, 4294967295]"),
        ("train.optimizer=adam(lr: 1e400)", "a number"),
    ],
)
def test_numbers_out_of_range_are_spec_errors_not_tracebacks(tiny: Path, setting: str, message: str):
    result = invoke("check", str(tiny), "--set", setting)
    assert result.exit_code == 2 and message in result.output


def test_a_run_folder_that_cannot_be_made_is_an_error(tiny: Path, tmp_path: Path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    result = invoke("run", str(tiny), "--out", str(blocker / "sub"), "--quiet")
    assert result.exit_code == 2 and "cannot create the run folder" in result.output


def test_fmt_write_keeps_comments_and_writes_through_a_link(tiny: Path, tmp_path: Path):
    tiny.write_text("# my notes\n" + TINY.replace("relu\n", "relu  # act\n"))
    link = tmp_path / "link.grow"
    link.symlink_to(tiny)
    assert invoke("fmt", "-w", str(link)).exit_code == 0
    assert link.is_symlink()
    written = tiny.read_text()
    assert written.startswith("# my notes\ndata digits") and "    relu  # act\n" in written
    assert invoke("fmt", "--check", str(link)).exit_code == 0


def test_fmt_drop_comments_leaves_them_out_of_the_output_and_the_file(tiny: Path):
    tiny.write_text("# my notes\n" + TINY)
    assert "#" not in invoke("fmt", "--drop-comments", str(tiny)).output
    assert invoke("fmt", "--check", "--drop-comments", str(tiny)).exit_code == 1
    assert invoke("fmt", "-w", "--drop-comments", str(tiny)).exit_code == 0
    assert "# my notes" not in tiny.read_text()


SHIPPED_SPECS = sorted(SPECS.glob("*.grow")) + sorted((SPECS.parent / "benchmarks" / "specs").glob("*.grow"))


@pytest.mark.parametrize("spec", SHIPPED_SPECS, ids=[f"{p.parent.name}/{p.name}" for p in SHIPPED_SPECS])
def test_shipped_specs_are_in_canonical_form(spec: Path):
    result = invoke("fmt", "--check", str(spec))
    assert result.exit_code == 0, f"run `growdsl fmt -w {spec}`"


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("model m { flatten linear(1e12) relu linear(classes) }", "larger than growdsl allows"),
        ("model m { flatten linear(4) as forward relu linear(classes) }", "reserved by torch.nn.Module"),
        ("model m { " + "{ " * 400 + "relu " + "} " * 400 + "}", "nests too deeply"),
    ],
)
def test_check_refuses_what_run_could_not_build(tmp_path: Path, model: str, message: str):
    spec = tmp_path / "s.grow"
    spec.write_text("data digits\n" + model + "\n")
    result = invoke("check", str(spec))
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize(
    ("op", "col", "message"),
    [
        ("slice(2, 9)", 19, "slice at m.1 takes channels [2, 9) of a [4, 8, 8] input: it needs start < end"),
        ("slice(3, 3)", 19, "slice at m.1 takes channels [3, 3) of a [4, 8, 8] input"),
        ("slice(-1, 2)", 25, "slice's `start` must be a non-negative integer, not -1"),
    ],
)
def test_a_slice_out_of_its_input_fails_check_at_its_place(tmp_path: Path, op: str, col: int, message: str):
    spec = tmp_path / "s.grow"
    spec.write_text(f"data digits\nmodel m {{ conv(4) {op} gap flatten linear(classes) }}\n")
    result = invoke("check", str(spec))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"s.grow:2:{col}: {message}" in result.output


def test_a_dot_file_in_a_missing_folder_is_an_error(tiny: Path, tmp_path: Path):
    result = invoke("show", str(tiny), "--dot", str(tmp_path / "missing" / "g.dot"))
    assert result.exit_code == 2 and "no such folder" in result.output
