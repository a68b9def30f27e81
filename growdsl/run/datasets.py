"""The catalog of data sets a spec can name in `data NAME(options)`.

Two questions, answered separately because lowering needs the first without paying for the second:
`describe(call)` gives the input shape and the number of classes cheaply (no big file is read), and
`load_data(call, seed)` produces the train / test / val splits: tensors for features, `Images`
(growdsl/run/images.py: stored pixels, standardized per batch, the training split augmented) for
images. Options are validated in both, so `growdsl check` reports a bad option (an augmentation
that does not fit the data among them) as a SpecError at its span.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from growdsl import plugins
from growdsl.errors import DataError, SpecError
from growdsl.lang.ast import Call, Value
from growdsl.lang.suggest import unknown_name_message
from growdsl.lazy import np, torch
from growdsl.options import BadValue, Option, boolean, int_list, integer, number, read_options, string
from growdsl.run import stream, synthetic, tabular, vision
from growdsl.run.augment import augmentation
from growdsl.run.images import Images, channel_stats
from growdsl.run.tasks import TaskScheme, select, task_scheme

Pair = tuple["torch.Tensor", "torch.Tensor"]


@dataclass(frozen=True)
class DataInfo:
    """What lowering binds: the input shape (without the batch dimension) and `classes`
    (None for a regression set)."""

    name: str
    input_shape: tuple[int, ...]
    classes: int | None
    tasks: TaskScheme | None = None  # a task sequence (`tasks: split(5)`), for continual learning


@dataclass(frozen=True)
class Splits:
    """Tensors `(x, y)` per split; `val` is None unless the spec asks for `val: fraction`."""

    train: Pair
    test: Pair
    val: Pair | None = None


@dataclass(frozen=True)
class DataSet:
    """A catalog entry. `info(opts)` gives (shape, classes); `load(opts, seed)` gives either the
    whole set `(x, y)` (split here by `test`) or its own `((train x, y), (test x, y))`."""

    name: str
    options: dict[str, Option]
    info: Callable[[dict[str, Any]], tuple[tuple[int, ...], int | None]]
    load: Callable[[dict[str, Any], int], Any]
    has_split: bool = False
    doc: str = ""
    plugin: str | None = None  # the plugin that registered the set (docs/plugins.md); None: built in


_FRACTION = number(0.0, 1.0, hi_open=True)
_COMMON = {
    "val": Option(0.0, _FRACTION, "fraction of the training data held out for validation"),
    "normalize": Option(True, boolean, "standardize each channel with the training split's statistics"),
    "tasks": Option(None, task_scheme, "a sequence of tasks, split(N): the classes in N equal groups"),
    "augment": Option(None, augmentation, "random augmentation of training batches: crop, flip, cutout"),
}
_TEST = {"test": Option(0.2, number(0.0, 1.0, lo_open=True, hi_open=True), "held-out test fraction")}


def with_common_options(own: dict[str, Option], has_split: bool = False) -> dict[str, Option]:
    """A set's own options and those every set takes (`test` unless it comes split, `val`,
    `normalize`, `tasks`)."""
    return {**own, **({} if has_split else _TEST), **_COMMON}


_opts = with_common_options


def _digits(opts: dict[str, Any], seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images[:, None, :, :] / 16.0).astype(np.float32), digits.target


def _channels(value: Value) -> int:
    """`channels` of an image folder: 1 or 3, the modes its images load in (2 would load as RGB)."""
    try:
        channels = integer()(value)
    except BadValue:
        channels = None
    if channels not in vision.CHANNELS:
        raise BadValue("1 (grey) or 3 (RGB)")
    return channels


_N = integer(10, 10**8)  # a synthetic set of 10^8 samples is gigabytes already; past it, a typo
_NOISE = number(0.0)
_VISION = {
    "root": Option("data", string, "folder holding the files"),
    "download": Option(False, boolean, "fetch the files with torchvision when missing"),
}

CATALOG: dict[str, DataSet] = {
    d.name: d
    for d in (
        DataSet(
            "digits",
            _opts({}),
            lambda o: ((1, 8, 8), 10),
            _digits,
            doc="scikit-learn's 8x8 handwritten digits, bundled: [1, 8, 8], 10 classes",
        ),
        DataSet(
            "spirals",
            _opts(
                {
                    "n": Option(2000, _N),
                    "noise": Option(0.2, _NOISE),
                    "turns": Option(2.0, number(0.1)),
                    "classes": Option(2, integer(2)),
                }
            ),
            lambda o: ((2,), o["classes"]),
            lambda o, s: synthetic.spirals(o["n"], o["noise"], o["turns"], o["classes"], s),
            doc="interleaved spiral arms in the plane",
        ),
        DataSet(
            "moons",
            _opts({"n": Option(1000, _N), "noise": Option(0.1, _NOISE)}),
            lambda o: ((2,), 2),
            lambda o, s: synthetic.moons(o["n"], o["noise"], s),
            doc="two interleaving half circles",
        ),
        DataSet(
            "circles",
            _opts(
                {
                    "n": Option(1000, _N),
                    "noise": Option(0.05, _NOISE),
                    "factor": Option(0.5, number(0.0, 1.0, lo_open=True, hi_open=True)),
                }
            ),
            lambda o: ((2,), 2),
            lambda o, s: synthetic.circles(o["n"], o["noise"], o["factor"], s),
            doc="a small circle inside a large one",
        ),
        DataSet(
            "blobs",
            _opts(
                {
                    "n": Option(1000, _N),
                    "classes": Option(3, integer(2)),
                    "dim": Option(2, integer(1)),
                    "spread": Option(1.0, number(0.0, lo_open=True)),
                }
            ),
            lambda o: ((o["dim"],), o["classes"]),
            lambda o, s: synthetic.blobs(o["n"], o["classes"], o["dim"], o["spread"], s),
            doc="Gaussian clusters, one per class",
        ),
        DataSet(
            "wave",
            _opts({"n": Option(1000, _N), "noise": Option(0.05, _NOISE), "freq": Option(1.0, number(0.0))}),
            lambda o: ((1,), None),
            lambda o, s: synthetic.wave(o["n"], o["noise"], o["freq"], s),
            doc="1-D regression y = sin(freq x) + noise; train with loss mse",
        ),
        DataSet(
            "mnist",
            _opts(_VISION, True),
            lambda o: ((1, 28, 28), 10),
            lambda o, s: vision.mnist_like("mnist", o["root"], o["download"]),
            has_split=True,
            doc="torchvision MNIST (raw files under ROOT/MNIST/raw)",
        ),
        DataSet(
            "fashion_mnist",
            _opts(_VISION, True),
            lambda o: ((1, 28, 28), 10),
            lambda o, s: vision.mnist_like("fashion_mnist", o["root"], o["download"]),
            has_split=True,
            doc="torchvision Fashion-MNIST (raw files under ROOT/FashionMNIST/raw)",
        ),
        DataSet(
            "cifar10",
            _opts(_VISION, True),
            lambda o: ((3, 32, 32), 10),
            lambda o, s: vision.cifar10(o["root"], o["download"]),
            has_split=True,
            doc="torchvision CIFAR-10 (ROOT/cifar-10-batches-py)",
        ),
        DataSet(
            "folder",
            _opts(
                {
                    "root": Option(None, string),
                    "size": Option([32, 32], int_list(2)),
                    "channels": Option(3, _channels),
                    "stream": Option(
                        None, boolean, "read batches from the files (default: above stream_above)"
                    ),
                    "stream_above": Option(
                        4 * 10**9, integer(0), "bytes in memory above which the set streams"
                    ),
                    "workers": Option(2, integer(0), "processes decoding images (0: this one)"),
                }
            ),
            lambda o: ((o["channels"], *o["size"]), len(vision.folder_classes(o["root"]))),
            lambda o, s: _folder(o),
            doc="an ImageFolder tree ROOT/<class>/<image>, resized to size: [H, W]; streamed when large",
        ),
        DataSet(
            "patterns",
            _opts(
                {
                    "n": Option(2000, _N),
                    "size": Option([32, 32], int_list(2)),
                    "channels": Option(3, _channels),
                    "classes": Option(10, integer(2)),
                    "noise": Option(0.25, _NOISE),
                }
            ),
            lambda o: ((o["channels"], *o["size"]), o["classes"]),
            lambda o, s: synthetic.patterns(o["n"], o["size"], o["channels"], o["classes"], o["noise"], s),
            doc="generated uint8 images: a smooth random template per class, shifted, plus noise",
        ),
        DataSet(
            "csv",
            _opts(
                {
                    "path": Option(None, string),
                    "target": Option("label", string),
                    "regression": Option(False, boolean),
                }
            ),
            lambda o: _csv_info(o),
            lambda o, s: tabular.load_csv(o["path"], o["target"], o["regression"]),
            doc="numeric feature columns and one target column",
        ),
    )
}
BUILTIN_DATA = frozenset(CATALOG)
DEFAULT = Call("digits")
_REQUIRED = {"folder": ("root", 'folder(root: "data/images")'), "csv": ("path", 'csv(path: "data.csv")')}


def _csv_info(opts: dict[str, Any]) -> tuple[tuple[int, ...], int | None]:
    features, classes = tabular.csv_info(opts["path"], opts["target"], opts["regression"])
    return (features,), classes


def _resolve(call: Call | None) -> tuple[DataSet, dict[str, Any]]:
    """The catalog entry and validated options of a `data` call (None: the default, digits)."""
    call = call or DEFAULT
    if call.name not in CATALOG and not plugins.provide(call.name):
        raise SpecError(
            unknown_name_message("data set", call.name, CATALOG),
            call.span,
            hint=plugins.unknown_hint(call.name, CATALOG),
        )
    entry = CATALOG[call.name]
    if entry.has_split:
        for arg in call.args:
            if arg.key == "test":
                raise SpecError(
                    f"'{call.name}' comes with its own test split, so 'test' does not apply",
                    arg.span,
                    hint="use val: 0.1 to hold out part of the training split",
                )
    opts = read_options(call, entry.options, "data option")
    if opts.get("test", 0.0) + opts["val"] >= 1.0:
        raise SpecError(
            f"test ({opts['test']}) and val ({opts['val']}) leave no training data",
            call.span,
            expected="test + val < 1",
        )
    if call.name in _REQUIRED and opts[_REQUIRED[call.name][0]] is None:
        option, example = _REQUIRED[call.name]
        raise SpecError(f"data set '{call.name}' needs the option '{option}'", call.span, expected=example)
    if opts["tasks"] is not None:
        opts["tasks"].check(entry.info(opts)[1])
        if opts.get("stream"):
            raise SpecError("a task sequence cannot stream its images", call.span, expected="stream: false")
    if opts["augment"] is not None:
        opts["augment"].check(call.name, tuple(entry.info(opts)[0]))
    return entry, opts


def _folder(opts: dict[str, Any]) -> Any:
    """An image folder's (pixels, labels): its files to stream with `stream: true` or when the
    pixels would take more than `stream_above` bytes, else every image decoded into memory."""
    files, labels = stream.folder_files(opts["root"], opts["size"], opts["channels"], opts["workers"])
    streams = opts["stream"]
    if streams is None:
        resident = stream.resident_bytes(len(files), opts["size"], opts["channels"])
        streams = resident > opts["stream_above"] and opts["tasks"] is None
    return (files if streams else files.load()), labels


def describe(call: Call | None) -> DataInfo:
    """Input shape and classes of a data set, validated, without loading it."""
    entry, opts = _resolve(call)
    shape, classes = entry.info(opts)
    return DataInfo(entry.name, tuple(shape), classes, opts["tasks"])


def known_data_sets() -> dict[str, str]:
    """Name -> one-line description, for help texts."""
    return {name: d.doc for name, d in CATALOG.items()}


def load_data(call: Call | None, seed: int) -> Splits:
    """Load and split a data set; the same `seed` always gives the same splits."""
    entry, opts = _resolve(call)
    return _splits(entry, opts, entry.load(opts, seed), torch.Generator().manual_seed(seed))


def load_tasks(call: Call | None, seed: int) -> list[Splits]:
    """The splits of each task of a `tasks:` data set, in task order: each task's rows are split
    into train / test (/ val) on their own, and standardized with their own training statistics
    (a task does not see the data of later ones); labels renumbered from 0 within a task."""
    entry, opts = _resolve(call)
    loaded = entry.load(opts, seed)
    if not entry.has_split:
        loaded = _to_pair(*loaded)
    gen = torch.Generator().manual_seed(seed)
    tasks = []
    for classes in opts["tasks"].groups(entry.info(opts)[1]):
        part = tuple(select(p, classes) for p in loaded) if entry.has_split else select(loaded, classes)
        tasks.append(_splits(entry, opts, part, gen))
    return tasks


def _splits(entry: DataSet, opts: dict[str, Any], loaded: Any, gen: torch.Generator) -> Splits:
    """Train / test / val of what `entry.load` gave; features standardized here when `normalize`
    says so, images wrapped as `Images` that standardize each batch (the training split's with
    the `augment` of the spec)."""
    if entry.has_split:
        train, test = loaded
    else:
        train, test = _split(_to_pair(*loaded), opts["test"], gen)
    val = None
    if opts["val"] > 0:
        train, val = _split(train, opts["val"] / (1.0 - opts.get("test", 0.0)), gen)
    if len(train[0]) == 0 or len(test[0]) == 0:
        sizes = f"test {opts.get('test')}, val {opts['val']}"
        raise DataError(f"data set '{entry.name}' is too small to split into {sizes}")
    if _is_images(train[0]):
        mean, std = _image_stats(train[0], opts["normalize"], gen)

        def images(pair: Pair | None, augment: Any = None) -> Pair | None:
            return None if pair is None else (Images(pair[0], mean, std, augment), pair[1])

        return Splits(images(train, opts["augment"]), images(test), images(val))
    if opts["normalize"]:
        mean, std = _channel_stats(train[0])
        train, test = _standardize(train, mean, std), _standardize(test, mean, std)
        val = _standardize(val, mean, std) if val is not None else None
    return Splits(train, test, val)


def _is_images(x: Any) -> bool:
    return isinstance(x, stream.ImageFiles) or x.dim() == 4


def _image_stats(pixels: Any, normalize: bool, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The channel mean and std the images are standardized with: the training split's (over a
    seeded sample of a streamed one, `stream.stats_sample`), or 0 and 1 without `normalize`."""
    channels = pixels.channels if isinstance(pixels, stream.ImageFiles) else pixels.shape[1]
    if not normalize:
        return torch.zeros(1, channels, 1, 1), torch.ones(1, channels, 1, 1)
    if isinstance(pixels, stream.ImageFiles):
        return channel_stats(pixels.subset(stream.stats_sample(len(pixels), gen.initial_seed())))
    if pixels.dtype != torch.uint8:  # float pixels are resident as float already: in one pass
        return _channel_stats(pixels)
    return channel_stats(pixels)


def _to_pair(x: Any, y: Any) -> Pair:
    """Features as float32, stored pixels (uint8, or files to stream) as they are; class labels
    as long, regression targets as float32."""
    y = torch.as_tensor(y)
    y = y.float() if y.is_floating_point() else y.long()
    if not isinstance(x, stream.ImageFiles):
        x = torch.as_tensor(x)
        x = x if x.dtype == torch.uint8 else x.float()
    return x, y


def _rows(x: Any, index: torch.Tensor) -> Any:
    return x.subset(index) if isinstance(x, stream.ImageFiles) else x[index]


def _split(pair: Pair, fraction: float, gen: torch.Generator) -> tuple[Pair, Pair]:
    """(rest, held out): a seeded random `fraction` of the rows held out."""
    x, y = pair
    perm = torch.randperm(len(x), generator=gen)
    k = round(fraction * len(x))
    held, rest = perm[:k], perm[k:]
    return (_rows(x, rest), y[rest]), (_rows(x, held), y[held])


def _channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std per channel (dim 1) over every other dimension, shaped to broadcast."""
    dims = [d for d in range(x.dim()) if d != 1]
    mean = x.mean(dim=dims, keepdim=True)
    std = x.std(dim=dims, keepdim=True)
    return mean, torch.where(std > 0, std, torch.ones_like(std))


def _standardize(pair: Pair, mean: torch.Tensor, std: torch.Tensor) -> Pair:
    x, y = pair
    return (x - mean) / std, y
