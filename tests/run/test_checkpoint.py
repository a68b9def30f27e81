"""checkpoint.pt: atomic writes, weights_only loading, clear errors for a bad file."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch

from growdsl.errors import CheckpointError
from growdsl.ir import from_json
from growdsl.run import run
from growdsl.run.checkpoint import FORMAT, load_checkpoint, save_checkpoint


def test_checkpoint_holds_everything_a_resume_needs(tiny_spec, tmp_path):
    result = run(tiny_spec, tmp_path / "out")
    ckpt = load_checkpoint(result.dir)
    assert ckpt["epoch"] == 3 and ckpt["history"] == result.history
    assert ckpt["spec"] == (tmp_path / "tiny.grow").read_text()
    assert set(ckpt["rng"]) == {"torch", "cuda", "python", "numpy", "shuffle"}
    assert ckpt["scheduler"]["last_epoch"] == 3
    assert ckpt["optimizer"]["state"]  # momentum buffers
    assert str(from_json(ckpt["graph"])) == str(result.graph)
    assert all(torch.equal(ckpt["model"][k], v) for k, v in result.model.state_dict().items())


def test_checkpoint_loads_with_weights_only(tiny_spec, tmp_path):
    result = run(tiny_spec, tmp_path / "out")
    torch.load(result.dir / "checkpoint.pt", weights_only=True)  # raises if anything is pickled code


def test_failed_write_keeps_the_previous_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"epoch": 1, "graph": {}, "model": {}, "optimizer": {}, "rng": {},
                               "history": [], "spec": "old"})  # fmt: skip
    real_save = torch.save

    def crash_halfway(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)
        with open(path, "r+b") as f:
            f.truncate(10)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_halfway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, {"epoch": 2, "graph": {}, "model": {}, "optimizer": {}, "rng": {},
                                   "history": [], "spec": "new"})  # fmt: skip
    monkeypatch.undo()
    assert load_checkpoint(tmp_path)["spec"] == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_missing_checkpoint_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_checkpoint_is_a_checkpoint_error(tiny_spec, tmp_path, damage):
    result = run(tiny_spec, tmp_path / "out")
    path = result.dir / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(b"not a checkpoint at all" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        load_checkpoint(result.dir)


class Payload:
    """A class torch would have to unpickle: weights_only refuses it."""


def test_checkpoint_with_pickled_objects_is_refused(tmp_path):
    torch.save({"format": 1, "evil": Payload()}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        load_checkpoint(tmp_path)


def test_checkpoint_of_another_format_is_refused(tmp_path):
    torch.save({"format": 99}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=f"format {FORMAT}"):
        load_checkpoint(tmp_path)


def test_flipped_bytes_in_the_weights_are_caught_by_the_checksum(tiny_spec, tmp_path):
    result = run(tiny_spec, tmp_path / "out")
    path = result.dir / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    key = next(iter(ckpt["model"]))
    ckpt["model"][key] = ckpt["model"][key].clone().add_(1.0)  # damaged weights, old digest kept
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(result.dir)


def test_any_unpickling_failure_is_a_checkpoint_error(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"hello")  # unpickles to a KeyError deep in torch
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        load_checkpoint(tmp_path)


def test_a_plain_pickle_is_refused_without_torchs_warning_first(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(pickle.dumps({"epoch": 1}))  # protocol 4 or 5, not torch's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match="corrupt or unreadable"):
            load_checkpoint(tmp_path)
    assert [str(w.message) for w in caught] == []
