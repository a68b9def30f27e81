"""Image data sets from files: torchvision's MNIST, Fashion-MNIST and CIFAR-10, and ImageFolder.

Nothing is downloaded unless the spec says `download: true`. Before torchvision is asked, the
expected files are checked here, so a missing set is a DataError naming the folder and the files,
not a torchvision traceback. Images are loaded once into uint8 tensors (0..255), standardized per
batch (growdsl/run/images.py): training then indexes tensors, with no per-sample Python.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from pathlib import Path

from growdsl.errors import DataError
from growdsl.lazy import np, torch
from growdsl.run.progress import counting

Pair = tuple["torch.Tensor", "torch.Tensor"]

_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CIFAR_FILES = (
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
    "batches.meta",
)
CHANNELS = (1, 3)  # the PIL modes an image folder loads in: L (grey) and RGB
# bounds of the look at a `folder` set's tree when it is described (by `check` too): what a
# plausible data set stays far below, and what keeps `root: "/"` a quick, clear error
MAX_CLASSES = 100_000
SCAN_LIMIT = 10_000  # directory entries looked at per class folder for a first image
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _require(folder: Path, files: tuple[str, ...], name: str) -> None:
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise DataError(
            f"data set '{name}' not found: the folder {folder} lacks {', '.join(missing)}; "
            "put the files there, point root: at the folder above it, or add download: true"
        )


def _unreadable(name: str, folder: Path, files: tuple[str, ...], error: Exception) -> DataError:
    """The DataError for files that are there but do not load (a saved HTML page, a truncated
    download): torchvision fails on them with asserts, pickle or index errors alike."""
    reason = str(error) or type(error).__name__
    return DataError(
        f"data set '{name}' could not be read from {folder} ({reason}); expected the original files "
        f"{', '.join(files)}: replace them, or delete them and add download: true"
    )


def mnist_like(name: str, root: str, download: bool) -> tuple[Pair, Pair]:
    """MNIST or Fashion-MNIST as ((train x, y), (test x, y)), x uint8 [n, 1, 28, 28]."""
    from torchvision import datasets as tvd

    cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
    folder = Path(root) / cls.__name__ / "raw"
    if not download:
        _require(folder, _MNIST_FILES, name)
    splits = []
    for train in (True, False):
        try:
            ds = cls(root, train=train, download=download)
        except Exception as e:  # a malformed file fails anywhere in torchvision
            raise _unreadable(name, folder, _MNIST_FILES, e) from e
        splits.append((ds.data.unsqueeze(1).contiguous(), ds.targets.long()))
    return splits[0], splits[1]


def cifar10(root: str, download: bool) -> tuple[Pair, Pair]:
    """CIFAR-10 as ((train x, y), (test x, y)), x uint8 [n, 3, 32, 32]."""
    from torchvision import datasets as tvd

    folder = Path(root) / tvd.CIFAR10.base_folder
    if not download:
        _require(folder, _CIFAR_FILES, "cifar10")
    splits = []
    for train in (True, False):
        try:
            ds = tvd.CIFAR10(root, train=train, download=download)
        except Exception as e:  # a malformed file fails anywhere in torchvision
            raise _unreadable("cifar10", folder, _CIFAR_FILES, e) from e
        x = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
        splits.append((x, torch.tensor(ds.targets, dtype=torch.long)))
    return splits[0], splits[1]


def folder_classes(root: str) -> list[str]:
    """The class names of an ImageFolder tree: its subfolders, sorted (as torchvision does), less
    hidden ones (names starting with '.'), which are never classes."""
    path = Path(root)
    if not path.is_dir():
        raise DataError(f"image folder {path} does not exist (expected one subfolder of images per class)")
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"image folder {path} has no class subfolders (expected {path}/<class>/<image>)")
    if len(classes) > MAX_CLASSES:
        raise DataError(
            f"image folder {path} has {len(classes):,} subfolders, each a class: more than {MAX_CLASSES:,}; "
            "is it the folder of one data set?"
        )
    empty = list(itertools.islice((name for name in classes if not _holds_an_image(path / name)), 6))
    if empty:
        shown = ", ".join(empty[:5]) + (" and more" if len(empty) > 5 else "")
        raise DataError(
            f"image folder {path}: every subfolder is a class and needs images, but {shown} "
            f"hold{'s' if len(empty) == 1 else ''} none ({', '.join(IMAGE_SUFFIXES)}) among the first "
            f"{SCAN_LIMIT:,} entries looked at; is {path} the folder of one data set?"
        )
    return classes


def _holds_an_image(folder: Path) -> bool:
    """Whether an image turns up under `folder` (at any depth, as ImageFolder looks) within
    SCAN_LIMIT directory entries, breadth first, symbolic links to folders not followed: the
    check stays quick on a folder that is not a data set (`root: "/"`)."""
    queue, seen = deque([folder]), 0
    while queue and seen <= SCAN_LIMIT:
        try:
            with os.scandir(queue.popleft()) as entries:
                for entry in entries:
                    seen += 1
                    if seen > SCAN_LIMIT:
                        break
                    if entry.is_dir(follow_symlinks=False):
                        queue.append(entry.path)
                    elif _is_image(entry.name) and entry.is_file():
                        return True
        except OSError:  # an unreadable folder holds no image ImageFolder could load either
            continue
    return False


def folder_samples(root: str) -> list[tuple[str, int]]:
    """(path, class index) of every image under `root/<class>/`, in torchvision's order; the files
    looked at are counted on a progress bar (`progress.counting`: shown to a person watching)."""
    from torchvision import datasets as tvd

    classes = folder_classes(root)  # the clear error for a missing or empty folder

    class Folder(tvd.ImageFolder):
        """An ImageFolder whose classes are exactly `folder_classes` (torchvision's own list
        would count hidden folders such as .ipynb_checkpoints, shifting every label)."""

        def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
            return classes, {name: i for i, name in enumerate(classes)}

    with counting(f"scanning {Path(root).name or root}", "files") as advance:

        def is_image(path: str) -> bool:  # asked of every file torchvision's walk finds
            advance(1)
            return _is_image(path)

        try:
            return Folder(root, is_valid_file=is_image).samples
        except (RuntimeError, OSError, FileNotFoundError) as e:
            raise DataError(f"image folder {root} could not be read: {e}") from e


def read_image(path: str, size: list[int], channels: int) -> np.ndarray:
    """One image file decoded and resized to `size` [H, W], as a uint8 array [channels, H, W]
    (numpy: many small tensor copies cost far more in torch, whose threads wake for each)."""
    image = _open_image(path, "L" if channels == 1 else "RGB").resize((size[1], size[0]))
    pixels = np.asarray(image, dtype=np.uint8).reshape(size[0], size[1], channels)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_SUFFIXES)


def _open_image(path: str, mode: str):  # noqa: ANN202 - a PIL image
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except (OSError, UnidentifiedImageError) as e:
        raise DataError(f"cannot read image {path}: {e}") from e
