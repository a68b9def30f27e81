"""`checkpoint.pt`: everything a run needs to continue exactly where it stopped.

It holds the graph (as node-link JSON, so no class is pickled), the model, optimizer and schedule
states, every random number generator (torch CPU and CUDA, Python, NumPy, the shuffle generator),
the epoch, the history so far, and the spec as run. Only plain containers, numbers, strings and
tensors go in, so it loads with `torch.load(weights_only=True)`: loading a checkpoint never runs
code. It carries its run's id (`growdsl/run/rundir.py`): a checkpoint copied in from another run
is refused. It is written atomically, so a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from pathlib import Path
from typing import Any

from growdsl.errors import CheckpointError
from growdsl.export import write_atomically
from growdsl.lazy import np, torch
from growdsl.run.rundir import check_identity, run_id

FILE = "checkpoint.pt"
FORMAT = 2  # bumped when the layout changes, so an old file is refused with a clear message


def rng_states(shuffle: torch.Generator) -> dict[str, Any]:
    """Every random state the training loop draws from, as weights_only-safe values."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "key": torch.from_numpy(key.astype(np.int64)),
            "pos": pos,
            "has_gauss": has_gauss,
            "cached": cached,
        },
        "shuffle": shuffle.get_state(),
    }


def restore_rng_states(states: dict[str, Any], shuffle: torch.Generator) -> None:
    """Put every generator back in the state `rng_states` saw."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    n = states["numpy"]
    key = n["key"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], key, n["pos"], n["has_gauss"], n["cached"]))
    shuffle.set_state(states["shuffle"])


def weights_digest(weights: dict[str, torch.Tensor]) -> str:
    """SHA-256 of every tensor of a state dict, in key order: torch.load checks no checksum, so
    without it a flipped byte in the weights would load silently."""
    digest = hashlib.sha256()
    for key in sorted(weights):
        digest.update(key.encode())
        digest.update(weights[key].detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(run_dir: Path, payload: dict[str, Any]) -> Path:
    """Write `payload` (see `growdsl.run.loop.checkpoint_payload`) to RUN_DIR/checkpoint.pt
    atomically: temp file in the same folder, fsync, rename."""
    path = Path(run_dir) / FILE
    data = {
        "format": FORMAT,
        **payload,
        "run_id": run_id(run_dir),
        "digest": weights_digest(payload["model"]),
    }
    write_atomically(path, lambda p: torch.save(data, p))
    return path


def load_tensors(path: Path) -> Any:
    """`torch.load(path, weights_only=True)` onto the CPU, without the warning torch prints for a
    file of another pickle protocol (a plain pickle where a checkpoint should be): the caller
    refuses such a file with its own message, and torch's would come first, misleading."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        return torch.load(path, map_location="cpu", weights_only=True)


def is_the_folders_checkpoint(run_dir: Path) -> bool:
    """Whether `run_dir/checkpoint.pt` carries the run id of the folder's `run.json`: where a
    folder holds both a run's checkpoint and a search's state (reused with --force by a growdsl
    that left the other's files behind), `run.json` names the one that is the folder's."""
    path = Path(run_dir) / FILE
    if not path.is_file() or run_id(Path(run_dir)) is None:
        return False
    try:
        data = load_tensors(path)
    except Exception:  # noqa: BLE001 - an unreadable checkpoint is not this folder's
        return False
    return isinstance(data, dict) and data.get("run_id") == run_id(Path(run_dir))


def load_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    """Read RUN_DIR/checkpoint.pt with weights_only=True; any problem is a CheckpointError."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: is {run_dir} a growdsl run directory?")
    try:
        data = load_tensors(path)
    except Exception as e:  # a damaged file fails anywhere in unzipping or unpickling, any type
        # (torch's own message suggests loading without weights_only, which would run the file's code)
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}); it was not loaded"
        ) from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path} is not a growdsl checkpoint of format {FORMAT} (written by another version?)"
        )
    missing = [k for k in ("epoch", "graph", "model", "optimizer", "rng", "history", "spec") if k not in data]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    if data.get("digest") != weights_digest(data["model"]):
        raise CheckpointError(f"checkpoint {path} is corrupt: its weights do not match their checksum")
    check_identity(Path(run_dir), data)
    return data
