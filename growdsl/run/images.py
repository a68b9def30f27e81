"""A split of images as it is stored, standardized (and, for training, augmented) one batch at a time.

Images stay in the form they were read in: uint8 pixels 0..255 for the file-based sets (a quarter
of float32's memory: CIFAR-10's 60,000 images take 184 MB, not 737 MB), float pixels in [0, 1]
for sets generated in process (digits). With `device cuda` the whole stored set moves to the GPU
once (`to`); every batch is then indexed, converted, standardized and augmented there, and never
crosses the host bus. A set too large for memory keeps its pixels in files
(`growdsl.run.stream.ImageFiles`), read by worker processes batch by batch.

`Images` reads like the tensor of standardized images it stands for: `len`, rows by index tensor
or slice (float32, standardized, never augmented), `.device`, `.to(device)`. That is all that
evaluation, growth statistics and the searches read of a split, so they work unchanged on it;
only the training loop asks for augmented batches (`growdsl.run.batches`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from growdsl.lazy import torch
from growdsl.run.augment import Augmentation

STATS_CHUNK_BYTES = 2**20  # stored pixels converted to float at a time for the channel statistics


def to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """Stored pixels as float32 in [0, 1]: uint8 divided by 255, float as they are."""
    return pixels.float() / 255.0 if pixels.dtype == torch.uint8 else pixels


def channel_stats(pixels: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) std per channel of stored pixels (a uint8 tensor, or `ImageFiles`) in
    [0, 1] units, shaped [1, C, 1, 1] to broadcast; accumulated in float64 over chunks of about
    STATS_CHUNK_BYTES, so neither a float copy of the set nor (for files) the set itself is ever
    in memory. A channel of zero spread gets std 1 (standardizing leaves it centred)."""
    n = len(pixels)
    first = pixels[0:1]
    rows = max(1, STATS_CHUNK_BYTES // first.numel())
    total = squares = torch.zeros(first.shape[1], dtype=torch.float64)
    count = 0
    for start in range(0, n, rows):
        chunk = to_unit(pixels[start : start + rows]).cpu()
        total = total + chunk.sum(dim=(0, 2, 3), dtype=torch.float64)
        squares = squares + (chunk * chunk).sum(dim=(0, 2, 3), dtype=torch.float64)
        count += chunk.numel() // chunk.shape[1]
    mean = total / count
    var = (squares - count * mean * mean) / max(count - 1, 1)
    std = var.clamp(min=0).sqrt()
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean.float().view(1, -1, 1, 1), std.float().view(1, -1, 1, 1)


@dataclass(frozen=True)
class Images:
    """Stored pixels `[n, C, H, W]` (a tensor, or `ImageFiles` read on demand), the training
    split's channel `mean` and `std` ([1, C, 1, 1], [0, 1] units; 0 and 1 without `normalize`),
    and the `augment` of the training split (None for held-out splits)."""

    pixels: Any
    mean: torch.Tensor
    std: torch.Tensor
    augment: Augmentation | None = None

    def __len__(self) -> int:
        return len(self.pixels)

    @property
    def device(self) -> torch.device:
        return self.pixels.device

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.mean.shape[1:2], *self.pixel_size)

    @property
    def pixel_size(self) -> tuple[int, int]:
        """[H, W] of one image."""
        return tuple(self.pixels.size) if self.streamed else tuple(self.pixels.shape[2:])

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def streamed(self) -> bool:
        """Whether the pixels stay in files, read batch by batch."""
        return not isinstance(self.pixels, torch.Tensor)

    def to(self, device: torch.device) -> Images:
        """The same images on `device` (a stored tensor moves once; files read there)."""
        return replace(
            self, pixels=self.pixels.to(device), mean=self.mean.to(device), std=self.std.to(device)
        )

    def standardize(self, pixels: torch.Tensor) -> torch.Tensor:
        """A batch of stored pixels as standardized float32."""
        return (to_unit(pixels) - self.mean) / self.std

    def __getitem__(self, index: Any) -> torch.Tensor:
        return self.standardize(self.pixels[index])

    def training_batch(self, pixels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """A batch of stored pixels as the network trains on it: augmented (drawing from `gen`)
        and standardized."""
        if self.augment is None:
            return self.standardize(pixels)
        return self.augment.standardized(self.standardize(self.augment.pixels(pixels, gen)), gen)
