"""Streamed image folders: the same batches as the folder in memory, bounded memory, exact resume
after a SIGKILL mid-run, the threshold that decides, and clean errors for unreadable files."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from growdsl.errors import DataError, SpecError
from growdsl.lang import parse_text
from growdsl.run import resume as resume_run
from growdsl.run import run
from growdsl.run.batches import eval_batches, training_batches
from growdsl.run.datasets import describe, load_data
from growdsl.run.images import Images
from growdsl.run.rundir import read_history
from growdsl.run.stream import ImageFiles

sys.path.insert(0, str(Path(__file__).parents[1]))
from sigkill import kill_at  # noqa: E402
from test_faults import mid_epoch, untimed  # noqa: E402


def make_folder(root: Path, classes: int = 3, per_class: int = 12, side: int = 6) -> Path:
    """Small PNGs whose colour follows their class, with a gradient so crops and flips show."""
    from PIL import Image

    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            image = Image.new("RGB", (side, side))
            image.putdata(
                [(40 * c + 10 * x, 7 * i + 5 * y, 200 - 50 * c) for y in range(side) for x in range(side)]
            )
            image.save(root / f"class{c}" / f"{i}.png")
    return root


def data_call(text: str):
    return parse_text(f"data {text}\nmodel m {{ flatten linear(2) }}\n", "d.grow").data


def test_streamed_folder_gives_the_batches_of_the_folder_in_memory(tmp_path):
    root = make_folder(tmp_path / "f")
    options = (
        f'root: "{root}", size: [8, 8], test: 0.25, val: 0.1, augment: [crop(pad: 2), flip, cutout(size: 3)]'
    )
    streamed = load_data(data_call(f"folder({options}, stream: true, workers: 1)"), 0)
    resident = load_data(data_call(f"folder({options}, stream: false)"), 0)
    assert isinstance(streamed.train[0].pixels, ImageFiles)
    assert resident.train[0].pixels.dtype == torch.uint8
    chunks = list(torch.randperm(len(resident.train[0]), generator=torch.Generator().manual_seed(1)).split(5))
    one = list(training_batches(streamed.train, chunks, torch.Generator().manual_seed(2)))
    two = list(training_batches(resident.train, chunks, torch.Generator().manual_seed(2)))
    assert len(one) == len(two) == len(chunks)
    for (xa, ya), (xb, yb) in zip(one, two, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    for split in ("test", "val"):
        a, b = getattr(streamed, split), getattr(resident, split)
        assert all(
            torch.equal(p[0], q[0]) and torch.equal(p[1], q[1])
            for p, q in zip(eval_batches(a, 4), eval_batches(b, 4), strict=True)
        )
    take = torch.tensor([3, 0, 7])  # what growth reads: rows by index, standardized, not augmented
    assert torch.equal(streamed.train[0][take], resident.train[0][take])


STREAMED = """
data folder(root: "{root}", size: [8, 8], test: 0.25, stream: {stream}, workers: 1,
            augment: [crop(pad: 2), flip])
model c {{ conv(4..8, k: 3) as c1 bn relu gap flatten linear(classes) }}
train {{ epochs 4 batch 8 optimizer sgd(lr: 0.05, momentum: 0.9) seed 1 device cpu }}
grow {{ every 2 epochs
    split(frac: 0.5, eps: 0.01, method: fast) }}
"""


def test_a_streamed_run_killed_mid_run_resumes_to_the_run_in_memory(tmp_path):
    """Growth included: its samples are read from the files, its statistics equal the in-memory
    run's, so the streamed run, killed and resumed, ends with the in-memory run's weights."""
    root = make_folder(tmp_path / "f", per_class=16)
    for stream in ("true", "false"):
        (tmp_path / f"{stream}.grow").write_text(STREAMED.format(root=root, stream=stream))
    path = tmp_path / "false.grow"
    whole = run(parse_text(path.read_text(), str(path)), tmp_path / "whole", quiet=True)
    assert any(r["event"] == "grow" for r in whole.history)
    out = tmp_path / "killed"
    kill_at(out, ["run", str(tmp_path / "true.grow"), "--out", str(out)], mid_epoch)
    resume_run(out, quiet=True)
    resumed = torch.load(out / "model.pt", weights_only=True)
    expected = whole.model.state_dict()
    assert resumed.keys() == expected.keys()
    assert all(torch.equal(resumed[k], expected[k]) for k in expected)
    assert untimed(read_history(out)) == untimed(read_history(tmp_path / "whole"))


PEAKS = """
import json, sys
from pathlib import Path
import torch
from growdsl.lang import parse_text
from growdsl.run.batches import eval_batches, training_batches
from growdsl.run.datasets import load_data


def kb(field):
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def peak_growth(data):
    Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak (VmHWM) to the current RSS
    start = kb("VmRSS")
    splits = load_data(parse_text("data " + data + "\\nmodel m { flatten linear(2) }\\n", "d.grow").data, 0)
    chunks = list(torch.randperm(len(splits.train[0])).split(4))
    for _ in training_batches(splits.train, chunks, torch.Generator()):
        pass
    for _ in eval_batches(splits.test, 4):
        pass
    return (kb("VmHWM") - start) * 1024


print(json.dumps([peak_growth(data) for data in sys.argv[1:]]))
"""


def peak_growths(*data: str) -> list[int]:
    """Bytes the peak resident memory of one fresh process rises by while it loads each `data`
    and reads an epoch and the test split of it, in turn (the peak reset between them through
    /proc/self/clear_refs). glibc's malloc would keep the freed float batches for reuse, so the
    peak would show its retention rather than what is alive; MALLOC_MMAP_THRESHOLD_ makes it
    return every block of 64 KB or more at once. With `workers: 0` all decoding is in this process."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    done = subprocess.run(
        [sys.executable, "-c", PEAKS, *data], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_streaming_keeps_resident_memory_bounded_where_the_folder_in_memory_does_not(tmp_path):
    root = make_folder(tmp_path / "f", classes=2, per_class=250, side=4)
    size = 500 * 3 * 160 * 160  # the folder's pixels in memory: 38 MB
    options = f'root: "{root}", size: [160, 160], test: 0.2, workers: 0'
    warm = f'folder(root: "{make_folder(tmp_path / "warm", 2, 2)}", size: [4, 4], stream: true)'  # imports
    _, streamed, resident = peak_growths(
        warm, f"folder({options}, stream: true)", f"folder({options}, stream: false)"
    )
    assert resident > 0.9 * size
    assert streamed < 0.5 * size  # a batch and a chunk of the statistics at a time, whatever the size


@pytest.mark.parametrize(
    "stream_option, streams",
    [("", False), ("stream_above: 100,", True), ("stream_above: 100, stream: false,", False)],
)
def test_the_stream_above_threshold_decides_where_stream_is_not_given(tmp_path, stream_option, streams):
    root = make_folder(tmp_path / "f", classes=2, per_class=3)
    splits = load_data(data_call(f'folder(root: "{root}", {stream_option} size: [4, 4], test: 0.5)'), 0)
    assert isinstance(splits.train[0], Images)
    assert isinstance(splits.train[0].pixels, ImageFiles) == streams


def test_an_unreadable_file_in_a_streamed_folder_is_a_data_error_naming_it(tmp_path):
    root = make_folder(tmp_path / "f", classes=2, per_class=3)
    bad = root / "class1" / "9.png"
    bad.write_bytes(b"<html>not an image</html>")
    call = data_call(
        f'folder(root: "{root}", size: [4, 4], test: 0.5, stream: true, workers: 1, normalize: false)'
    )
    splits = load_data(call, 0)
    everything = (splits.train, splits.test)
    with pytest.raises(DataError) as info:
        for pair in everything:
            list(training_batches(pair, [torch.arange(len(pair[0]))], torch.Generator()))
    assert f"cannot read image {bad}" in str(info.value) and "Traceback" not in str(info.value)


def test_a_task_sequence_that_streams_is_a_spec_error(tmp_path):
    root = make_folder(tmp_path / "f", classes=4, per_class=1)
    with pytest.raises(SpecError, match="cannot stream"):
        describe(data_call(f'folder(root: "{root}", stream: true, tasks: split(2))'))


class Terminal(io.StringIO):
    """A screen a person watches (progress is drawn only on a terminal)."""

    def isatty(self) -> bool:
        return True


def test_reading_a_folder_shows_its_scan_and_its_images_on_a_terminal_and_nothing_when_quiet(
    tmp_path, monkeypatch
):
    """Finding 13: a big folder read in silence. The files the scan looks at are counted (a
    note that is not an image too), then the images decoded, out of their number."""
    root = make_folder(tmp_path / "f", classes=3, per_class=40, side=4)
    (root / "class1" / "notes.txt").write_text("not an image")
    spec = parse_text(
        f'data folder(root: "{root}", size: [4, 4], test: 0.25, stream: false, workers: 1)\n'
        "model m { flatten linear(classes) }\ntrain { epochs 1 device cpu }\n",
        "f.grow",
    )
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    run(spec, tmp_path / "watched")
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())  # the terminal's control codes
    assert re.search(r"scanning f +121 files", shown), shown
    assert re.search(r"reading images .*120/120 +images", shown), shown
    quiet = Terminal()
    monkeypatch.setattr(sys, "stdout", quiet)
    run(spec, tmp_path / "quiet", quiet=True)
    assert quiet.getvalue() == ""
