"""Streamed image folders: pixels that stay in their files, decoded batch by batch by worker processes.

`folder(root: ..., stream: true, workers: N)` keeps only the list of files and their labels in
memory. `ImageFiles` stands where a tensor of stored pixels would (`growdsl.run.images.Images`
holds either): `files[index]` decodes and resizes those rows in this process (what growth's
samples and the probe batch read), `subset(index)` is the split of the files, and `batches(chunks)`
reads a whole epoch's batches through torch's `DataLoader` with `workers` processes, in exactly
the order of `chunks`. That order is drawn by the training loop from the run's shuffle generator,
whose state every checkpoint saves, so a resumed run reads the same batches in the same order;
the workers only decode (no randomness there), and augmentation runs on the decoded batch in the
main process, from the same generator (growdsl/run/batches.py).

Without `stream`, a folder streams when it would take more than `stream_above` bytes in memory
(uint8 pixels: images x channels x H x W; default 4G, docs/language.md, "Data").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from growdsl.errors import DataError
from growdsl.lazy import np, torch
from growdsl.run import vision
from growdsl.run.progress import counting

LOAD_BATCH = 256  # images a worker decodes at a time while a folder is read into memory
STATS_SAMPLE = 1000  # images of a streamed training split its channel statistics are computed on


@dataclass(frozen=True)
class FileRows:
    """The worker-side dataset: row i decoded and resized, or the message of a file that would
    not read (raised in the main process: an exception raised in a worker reaches it with the
    worker's traceback pasted into its message)."""

    paths: tuple[str, ...]
    size: tuple[int, int]
    channels: int

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray | str:
        try:
            return vision.read_image(self.paths[i], list(self.size), self.channels)
        except DataError as e:
            return str(e)


def stack_or_error(rows: list[np.ndarray | str]) -> torch.Tensor | str:
    """A DataLoader `collate_fn`: the batch of rows as one uint8 tensor, or the first row's read
    error."""
    for row in rows:
        if isinstance(row, str):
            return row
    return torch.from_numpy(np.stack(rows))


@dataclass(frozen=True)
class ImageFiles:
    """Images kept as files: `paths` decoded to uint8 [channels, *size] on demand, on `device`."""

    paths: tuple[str, ...]
    size: tuple[int, int]
    channels: int
    workers: int
    device: Any = field(default="cpu", compare=False)

    @property
    def rows(self) -> FileRows:
        return FileRows(self.paths, self.size, self.channels)

    def __len__(self) -> int:
        return len(self.paths)

    def to(self, device: Any) -> ImageFiles:
        return replace(self, device=torch.device(device))

    def subset(self, index: torch.Tensor) -> ImageFiles:
        """The files at `index`, in that order."""
        return replace(self, paths=tuple(self.paths[i] for i in index.tolist()))

    def __getitem__(self, index: Any) -> torch.Tensor:
        """The rows at an index tensor or slice, decoded here (a few hundred, for growth)."""
        picks = range(len(self))[index] if isinstance(index, slice) else index.cpu().tolist()
        rows = self.rows
        return _on(self.device, stack_or_error([rows[i] for i in picks]))

    def load(self) -> torch.Tensor:
        """Every image decoded into one uint8 tensor [n, channels, H, W], for a folder small
        enough to keep in memory (by the workers, unless one batch holds it all: starting them
        would cost more), counted on a progress bar (`progress.counting`)."""
        out = torch.empty((len(self), self.channels, *self.size), dtype=torch.uint8)
        chunks = list(torch.arange(len(self)).split(LOAD_BATCH))
        files = replace(self, device=torch.device("cpu"), workers=self.workers if len(chunks) > 1 else 0)
        with counting("reading images", "images", len(self)) as advance:
            for idx, batch in zip(chunks, files.batches(chunks), strict=True):
                out[idx[0] : idx[-1] + 1] = batch
                advance(len(idx))
        return out

    def batches(self, chunks: list[torch.Tensor]) -> Iterator[torch.Tensor]:
        """The stored pixels of each chunk of row indices, in order, decoded by the workers."""
        from torch.utils.data import DataLoader

        loader = DataLoader(
            self.rows,
            batch_sampler=[chunk.cpu().tolist() for chunk in chunks],
            num_workers=self.workers,
            collate_fn=stack_or_error,
            pin_memory=torch.device(self.device).type == "cuda",
        )
        for batch in loader:
            yield _on(self.device, batch)


def _on(device: Any, batch: torch.Tensor | str) -> torch.Tensor:
    if isinstance(batch, str):
        raise DataError(batch)
    return batch.to(device, non_blocking=True)


def resident_bytes(count: int, size: list[int], channels: int) -> int:
    """What `count` images of a folder take in memory as uint8 pixels."""
    return count * channels * size[0] * size[1]


def folder_files(root: str, size: list[int], channels: int, workers: int) -> tuple[ImageFiles, torch.Tensor]:
    """The images under `root/<class>/` as files to stream, and their labels."""
    samples = vision.folder_samples(root)
    files = ImageFiles(tuple(path for path, _ in samples), (size[0], size[1]), channels, workers)
    return files, torch.tensor([label for _, label in samples], dtype=torch.long)


def stats_sample(n: int, seed: int) -> torch.Tensor:
    """The rows of a streamed training split its channel statistics come from: all of a small
    split, a seeded sample of STATS_SAMPLE rows of a large one (a full pass over ImageNet to
    standardize it would cost an epoch of reading)."""
    if n <= STATS_SAMPLE:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:STATS_SAMPLE].sort().values
