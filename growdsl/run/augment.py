"""`augment: [crop(pad: 4), flip, cutout(size: 16)]`: random augmentation of training batches.

Each augmentation transforms a whole batch with tensor operations on the device the batch is on
(no per-sample Python), drawing its random numbers from the generator the caller passes: the
run's shuffle generator, which the checkpoint saves, so two runs with one seed see the same
augmented batches and a resumed run the same as an uninterrupted one (docs/language.md, "Data").

Semantics, exactly (the reference pipelines of the CIFAR papers: torchvision's
`RandomCrop(32, padding=4)` and `RandomHorizontalFlip` on the pixels, then `Normalize`, then
DeVries & Taylor's Cutout on the normalised tensor):

| augmentation | stage | per sample |
| --- | --- | --- |
| `crop(pad: P)` | pixels | pad by P zeros (black) each side; the H x W window at offsets uniform in [0, 2P] |
| `flip` | pixels | mirror left-right with probability 1/2 |
| `cutout(size: S)` | standardized | the S x S square at a uniform centre (clipped at the borders) set to 0 |

(0 after standardization is the training set's mean colour.)

Pixel-stage augmentations run in the order listed, then the batch is standardized, then the
standardized-stage ones run in the order listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from growdsl.errors import Span, SpecError
from growdsl.lang.ast import Call, ListValue, Name, Value
from growdsl.lang.suggest import unknown_name_message
from growdsl.lazy import F, torch
from growdsl.options import BadValue, Option, integer, read_options

PIXELS, STANDARDIZED = "pixels", "standardized"


@dataclass(frozen=True)
class Crop:
    """Random crop back to the input size after zero padding by `pad` on every side."""

    pad: int
    span: Span
    stage = PIXELS

    def check(self, height: int, width: int) -> None:
        if self.pad >= min(height, width):
            raise SpecError(
                f"crop(pad: {self.pad}) is larger than the {height}x{width} image: a crop could hold "
                "no pixel of it",
                self.span,
                expected=f"pad < {min(height, width)}",
            )

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, c, h, w = x.shape
        p = self.pad
        padded = F.pad(x, (p, p, p, p))
        top = torch.randint(0, 2 * p + 1, (n, 1), generator=gen).to(x.device)
        left = torch.randint(0, 2 * p + 1, (n, 1), generator=gen).to(x.device)
        rows = top + torch.arange(h, device=x.device)  # [n, h]: the window's rows in `padded`
        cols = left + torch.arange(w, device=x.device)
        out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * p))
        return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


@dataclass(frozen=True)
class Flip:
    """Horizontal flip with probability 1/2."""

    span: Span
    stage = PIXELS

    def check(self, height: int, width: int) -> None:
        pass  # any image can be mirrored

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        flip = (torch.rand(len(x), generator=gen) < 0.5).to(x.device)
        return torch.where(flip[:, None, None, None], x.flip(3), x)


@dataclass(frozen=True)
class Cutout:
    """An S x S square at a uniform centre set to 0 (the mean, after standardization)."""

    size: int
    span: Span
    stage = STANDARDIZED

    def check(self, height: int, width: int) -> None:
        if self.size > min(height, width):
            raise SpecError(
                f"cutout(size: {self.size}) is larger than the {height}x{width} image",
                self.span,
                expected=f"size <= {min(height, width)}",
            )

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        top = torch.randint(0, h, (n, 1), generator=gen).to(x.device) - self.size // 2
        left = torch.randint(0, w, (n, 1), generator=gen).to(x.device) - self.size // 2
        ys = torch.arange(h, device=x.device)
        xs = torch.arange(w, device=x.device)
        in_rows = (ys >= top) & (ys < top + self.size)  # [n, h]
        in_cols = (xs >= left) & (xs < left + self.size)  # [n, w]
        square = in_rows[:, None, :, None] & in_cols[:, None, None, :]
        return x.masked_fill(square, 0.0)


_PAD = integer(1)
KINDS: dict[str, tuple[dict[str, Option], Any]] = {
    "crop": ({"pad": Option(4, _PAD, "zero padding on each side before the crop")}, Crop),
    "flip": ({}, Flip),
    "cutout": ({"size": Option(None, integer(1), "side of the square set to the mean")}, Cutout),
}


@dataclass(frozen=True)
class Augmentation:
    """The augmentations of a data set, in the order listed; `span` is the list's."""

    steps: tuple[Any, ...]
    span: Span

    def check(self, data: str, shape: tuple[int, ...]) -> None:
        """SpecErrors for data that are not images and for steps larger than the image."""
        if len(shape) != 3:
            raise SpecError(
                f"augment applies to images, but '{data}' gives inputs of shape {list(shape)}",
                self.span,
                expected="a data set of images [C, H, W] (digits, mnist, fashion_mnist, cifar10, folder, "
                "patterns)",
            )
        for step in self.steps:
            step.check(shape[1], shape[2])

    def pixels(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The pixel-stage steps applied to a batch of stored pixels."""
        return self._apply(PIXELS, x, gen)

    def standardized(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The standardized-stage steps applied to a standardized batch."""
        return self._apply(STANDARDIZED, x, gen)

    def _apply(self, stage: str, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        for step in self.steps:
            if step.stage == stage:
                x = step(x, gen)
        return x


def augmentation(value: Value) -> Augmentation:
    """The check of the `augment` data option: a list of `crop(pad: P)`, `flip`, `cutout(size: S)`,
    each at most once (did-you-mean for other names)."""
    items = value.items if isinstance(value, ListValue) else (value,)
    steps, seen = [], set()
    for item in items:
        if not isinstance(item, Name | Call):
            raise BadValue("a list of augmentations, as in augment: [crop(pad: 4), flip, cutout(size: 16)]")
        name = item.id if isinstance(item, Name) else item.name
        if name not in KINDS:
            raise SpecError(unknown_name_message("augmentation", name, KINDS), item.span)
        if name in seen:
            raise SpecError(f"augmentation '{name}' is listed twice", item.span)
        seen.add(name)
        options, kind = KINDS[name]
        values = read_options(item, options, f"{name} option") if isinstance(item, Call) else {}
        values = {**{k: o.default for k, o in options.items()}, **values}
        missing = [k for k, v in values.items() if v is None]
        if missing:
            raise SpecError(
                f"augmentation '{name}' needs the option '{missing[0]}'",
                item.span,
                expected=f"{name}({missing[0]}: ...)",
            )
        steps.append(kind(**values, span=item.span))
    return Augmentation(tuple(steps), value.span)
