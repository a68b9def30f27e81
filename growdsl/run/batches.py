"""The batches the loop trains and evaluates on, whatever holds the split.

A split's `x` is a tensor (features, or images standardized at load) or `Images`
(growdsl/run/images.py: stored pixels, standardized per batch, augmented for training, resident
or streamed from files). The loop decides the order (index chunks drawn from the run's shuffle
generator, `growdsl.run.loop.batches`); these functions turn the chunks into `(x, y)` batches on
the split's device. Augmentation draws from the same generator, after the epoch's permutation, so
the checkpointed generator state fixes both the order and the augmentation of every later batch.
"""

from __future__ import annotations

from collections.abc import Iterator

from growdsl.lazy import torch
from growdsl.run.images import Images

Pair = tuple["torch.Tensor", "torch.Tensor"]


def training_batches(train: Pair, chunks: list[torch.Tensor], gen: torch.Generator) -> Iterator[Pair]:
    """Each chunk of row indices as a training batch: the rows of `train`, augmented (drawing from
    `gen`) and standardized where `x` is `Images`."""
    x, y = train
    if not isinstance(x, Images):
        for idx in chunks:
            yield x.index_select(0, idx), y.index_select(0, idx)
        return
    stored = x.pixels.batches(chunks) if x.streamed else (x.pixels.index_select(0, idx) for idx in chunks)
    for idx, pixels in zip(chunks, stored, strict=True):
        yield x.training_batch(pixels, gen), y.index_select(0, idx.to(y.device))


def eval_batches(pair: Pair, size: int) -> Iterator[Pair]:
    """The split in order, `size` rows at a time, standardized, never augmented."""
    x, y = pair
    if isinstance(x, Images) and x.streamed:
        chunks = list(torch.arange(len(x)).split(size))
        for idx, pixels in zip(chunks, x.pixels.batches(chunks), strict=True):
            yield x.standardize(pixels), y.index_select(0, idx.to(y.device))
        return
    for i in range(0, len(x), size):
        yield x[i : i + size], y[i : i + size]
