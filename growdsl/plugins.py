"""Plugins: ops and data sets from the user's own Python code (docs/plugins.md).

A plugin is a Python module, an importable name (`mypkg.ops`) or a file (`ops.py`), that calls
`register_op` and `register_data` when it is imported. A spec only names ops and data sets; it
never imports code. The person running it enables plugins, in two ways:

- `--plugin REF` on the command line (`growdsl run SPEC --plugin mypkg.ops`), or `enable([...])`
  and `load_plugins([...])` from Python;
- an entry point in the group `growdsl.plugins` of an installed package, named for the op or data
  set it provides (`layernorm = "mypkg.ops"` under `[project.entry-points."growdsl.plugins"]`).

Loading is lazy, so `growdsl check` stays fast: nothing is imported until a spec names an op or a
data set growdsl does not know. `provide(name)` then loads the entry points named `name`, then
every enabled plugin not loaded yet, in the order given, and says whether `name` is now known.
A run records the plugins it loaded in its `run.json` (`recorded`), and whatever reopens the
run (resume, `load_run`, export, replay) and a search's worker processes load them again.

Registered ops join the one op table (`growdsl.ir.ops.OPS`, with their shape rule, cost and
module factory on the `OpSig`), data sets the one catalog (`growdsl.run.datasets.CATALOG`), so
lowering, shape inference, costs, compiling and growth treat them as they treat built-ins.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from growdsl.errors import DataError, GrowDSLError, PluginError
from growdsl.ir.ops import BUILTIN_OPS, OPS, REQUIRED, WEIGHT_OPS, OpSig, Shape, Widening
from growdsl.lang.suggest import did_you_mean

__all__ = [
    "ENTRY_POINTS",
    "REQUIRED",
    "Widening",
    "enable",
    "load_plugins",
    "loaded",
    "provide",
    "register_data",
    "register_op",
]

ENTRY_POINTS = "growdsl.plugins"
UNKNOWN_HINT = (
    "a plugin may provide it: growdsl check SPEC --plugin MODULE (a module name or a .py file), "
    "or an installed package's entry point; see docs/plugins.md"
)


def unknown_hint(name: str, known: Iterable[str]) -> str | None:
    """The hint for a name no table holds: that a plugin may provide it, unless the name is a near
    miss of a known one (a typo, which the message's `did you mean` already answers)."""
    return UNKNOWN_HINT if did_you_mean(name, known) is None else None


_enabled: list[str] = []  # references given by --plugin or enable(), in order
_loaded: dict[str, str] = {}  # reference (a module name or a resolved .py path) -> module name
_loading: list[str] = []  # the reference being imported (registrations name it as their plugin)


# ---------------------------------------------------------------- enabling and loading


def _reference(ref: str) -> str:
    """A plugin reference as it is recorded: a `.py` file as its resolved path, a module as named."""
    ref = str(ref).strip()
    if not ref:
        raise PluginError("an empty plugin name: give a module name (mypkg.ops) or a .py file")
    return str(Path(ref).resolve()) if ref.endswith(".py") else ref


def enable(refs: Iterable[str]) -> None:
    """Make plugins available without importing them: each is loaded when a spec first names an op
    or data set growdsl does not know (`provide`)."""
    for ref in map(_reference, refs):
        if ref not in _enabled:
            _enabled.append(ref)


def load_plugins(refs: Iterable[str]) -> list[str]:
    """Enable the plugins `refs` and import them now (idempotent); returns their references."""
    refs = [_reference(r) for r in refs]
    enable(refs)
    for ref in refs:
        _load(ref)
    return refs


def loaded() -> list[str]:
    """The references of the plugins loaded so far, in the order they were loaded: what a run
    records (entry-point plugins by their module name)."""
    return list(_loaded)


def provide(name: str) -> bool:
    """Load what may provide the op or data set `name`: the entry points named `name`, then every
    enabled plugin not loaded yet. True when `name` is an op or data set afterwards."""
    from importlib.metadata import entry_points  # scans installed packages: only for unknown names

    for point in entry_points(group=ENTRY_POINTS):
        if point.name == name:
            _load(point.value.partition(":")[0])
    for ref in _enabled:
        if _known(name):
            break
        _load(ref)
    return _known(name)


def _known(name: str) -> bool:
    from growdsl.run.datasets import CATALOG

    return name in OPS or name in CATALOG


def _load(ref: str) -> None:
    if ref in _loaded:
        return
    _loading.append(ref)
    try:
        module = _import_file(ref) if ref.endswith(".py") else _import_module(ref)
    finally:
        _loading.pop()
    _loaded[ref] = module


def _import_module(ref: str) -> str:
    try:
        importlib.import_module(ref)
    except ModuleNotFoundError as e:
        if e.name is not None and ref.startswith(e.name):  # the plugin itself, not one it imports
            raise PluginError(
                f"plugin '{ref}' is not an importable module; give a module name on the Python path "
                "(mypkg.ops) or a file ending in .py"
            ) from None
        raise PluginError(f"plugin '{ref}' failed to import: {type(e).__name__}: {e}") from e
    except PluginError:
        raise
    except Exception as e:  # noqa: BLE001 - the user's code: its failure is reported, not a crash
        raise PluginError(f"plugin '{ref}' failed to import: {type(e).__name__}: {e}") from e
    return ref


def _import_file(path: str) -> str:
    """Import a `.py` file as a module named for its path (so two files of one name do not clash)
    and registered in `sys.modules` (so what it defines can be pickled and found again)."""
    import importlib.util

    file = Path(path)
    if not file.is_file():
        raise PluginError(f"plugin file {path} does not exist")
    digest = hashlib.sha256(path.encode()).hexdigest()[:8]
    name = f"growdsl_plugin_{file.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin file {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except PluginError:
        del sys.modules[name]
        raise
    except Exception as e:  # noqa: BLE001 - the user's code: its failure is reported, not a crash
        del sys.modules[name]
        raise PluginError(f"plugin file {path} failed to import: {type(e).__name__}: {e}") from e
    return name


def recorded(identity: Mapping[str, Any]) -> list[str]:
    """The plugins a run's `run.json` says it loaded."""
    refs = identity.get("plugins", [])
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise PluginError("run.json's 'plugins' is not a list of plugin names")
    return refs


# ---------------------------------------------------------------- registering


def _owner() -> str:
    return _loading[-1] if _loading else "__main__"


def _claim(name: str, what: str, taken: Mapping[str, Any], builtin: Iterable[str]) -> None:
    if not name.isidentifier():
        raise PluginError(f"{what} name '{name}' is not an identifier (letters, digits, _)")
    if name in builtin:
        raise PluginError(f"plugin {_owner()} registers the {what} '{name}', which is built in")
    owner = getattr(taken.get(name), "plugin", None)
    if name in taken and owner != _owner():
        raise PluginError(f"the {what} '{name}' is registered by both {owner} and {_owner()}")


def register_op(
    name: str,
    build: Callable[[dict[str, Any], Shape], Any],
    *,
    params: Iterable[tuple[str, Any]] = (),
    shape: Callable[[dict[str, Any], Shape], Shape] | None = None,
    cost: Callable[[dict[str, Any], Shape, Shape], tuple[int, int]] | None = None,
    width: str | None = None,
    widening: Widening | None = None,
    transparent: bool = False,
    mixes_channels: bool = False,
    choosable: Iterable[str] | None = None,
    doc: str = "",
) -> OpSig:
    """Add the op `name` to the op table (docs/plugins.md, "Ops"):

    - `build(args, input_shape)`: the `nn.Module` for one node (`args` with defaults filled in,
      `input_shape` per sample, without the batch dimension);
    - `params`: `(argument, default)` pairs in positional order (`REQUIRED` for no default);
    - `shape(args, input_shape)`: the output shape, raising `ValueError(why)` for an input it does
      not take; by default the output has the input's shape;
    - `cost(args, input_shape, output_shape)`: `(parameters, FLOPs)` of one sample, as torch
      counts them; by default the parameters of the module `build` makes (built on torch's meta
      device, so nothing is allocated) and no FLOPs;
    - `width`: the argument that sizes the output channels, which makes the op growable (it may
      be a range, `myop(8..64)`), with `widening` saying which tensors its channels index (by
      default those of a linear layer: rows of `weight` and `bias`, columns of `weight`);
    - `transparent`: it passes channels through one for one (an activation, a per-channel scale;
      its per-channel tensors are `widening.per_channel`); `mixes_channels`: transparent in shape
      but each output reads every channel (a layer norm), so a layer feeding it cannot widen.
    """
    _claim(name, "op", OPS, BUILTIN_OPS)
    params = tuple((p, d) for p, d in params)
    names = [p for p, _ in params]
    if width is not None and width not in names:
        raise PluginError(f"op '{name}': its width '{width}' is not one of its params ({', '.join(names)})")
    if width is not None and transparent:
        raise PluginError(f"op '{name}' has a width, so it owns its channels and cannot be transparent")
    if widening is None:
        widening = Widening(rows=("weight", "bias"), columns=("weight",)) if width else Widening()
    if width is not None and not widening.rows:
        raise PluginError(f"op '{name}' has a width but its widening names no rows (its neurons' tensors)")
    sig = OpSig(
        name,
        params,
        width=width,
        transparent=transparent or mixes_channels,
        choosable=tuple(choosable) if choosable is not None else ((width,) if width else ()),
        doc=doc,
        mixes_channels=mixes_channels,
        widening=widening,
        shape=shape or _same_shape,
        cost=cost or _params_of(build),
        build=build,
        plugin=_owner(),
    )
    OPS[name] = sig
    if width is not None and name not in WEIGHT_OPS:
        WEIGHT_OPS.append(name)
    return sig


def _same_shape(args: dict[str, Any], inp: Shape) -> Shape:
    return inp


def _params_of(build: Callable[[dict[str, Any], Shape], Any]) -> Callable[..., tuple[int, int]]:
    """A cost rule counting the parameters of the module `build` makes, and no FLOPs."""

    def cost(args: dict[str, Any], inp: Shape, out: Shape) -> tuple[int, int]:
        from growdsl.lazy import torch

        with torch.device("meta"):
            module = build(args, inp)
        return sum(p.numel() for p in module.parameters()), 0

    return cost


def register_data(
    name: str,
    load: Callable[[dict[str, Any], int], Any],
    *,
    shape: Shape | Callable[[dict[str, Any]], Shape],
    classes: int | None | Callable[[dict[str, Any]], int | None],
    options: Mapping[str, Any] | None = None,
    split: bool = False,
    doc: str = "",
) -> None:
    """Add the data set `name` to the catalog (docs/plugins.md, "Data sets"):

    - `load(options, seed)`: the examples, as `(x, y)` arrays or tensors (x with the batch first)
      or a torch `Dataset` of `(x, y)` pairs; with `split`, a pair `(train, test)` of those, and the
      spec's `test` option does not apply;
    - `shape` (per sample, without the batch dimension) and `classes` (None for a regression
      set): values, or functions of the options, cheap enough for `growdsl check`;
    - `options`: `{name: growdsl.options.Option}`, read from the spec's `data NAME(...)` call and
      checked like a built-in set's; `val`, `normalize`, `tasks` (and `test`) come with every set.
    """
    from growdsl.run import datasets

    _claim(name, "data set", datasets.CATALOG, datasets.BUILTIN_DATA)
    shape_of = _as_data_error(name, shape if callable(shape) else (lambda opts: tuple(shape)))
    classes_of = _as_data_error(name, classes if callable(classes) else (lambda opts: classes))
    load = _as_data_error(name, load)
    entry = datasets.DataSet(
        name,
        datasets.with_common_options(dict(options or {}), split),
        lambda opts: (tuple(shape_of(opts)), classes_of(opts)),
        lambda opts, seed: _examples(name, load(opts, seed), split, tuple(shape_of(opts))),
        has_split=split,
        doc=doc,
        plugin=_owner(),
    )
    datasets.CATALOG[name] = entry


def _as_data_error(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` (the plugin's code) with what it raises reported as a DataError (a missing
    file is the user's mistake, not a crash)."""
    owner = _owner()

    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except GrowDSLError:
            raise
        except Exception as e:  # noqa: BLE001 - the user's code: its failure is reported, not a crash
            raise DataError(f"data set '{name}' (plugin {owner}): {type(e).__name__}: {e}") from e

    return call


def _examples(name: str, loaded: Any, split: bool, shape: Shape) -> Any:
    """What a plugin's `load` gave, as tensors, checked against the shape it declared."""
    if split:
        if not isinstance(loaded, tuple | list) or len(loaded) != 2:
            raise PluginError(f"data set '{name}' is split, so its load must give (train, test)")
        return tuple(_pair(name, part, shape) for part in loaded)
    return _pair(name, loaded, shape)


def _pair(name: str, part: Any, shape: Shape) -> tuple[Any, Any]:
    from growdsl.lazy import torch

    if isinstance(part, tuple | list) and len(part) == 2:
        x, y = (torch.as_tensor(a) for a in part)
    elif hasattr(part, "__getitem__") and hasattr(part, "__len__"):  # a torch Dataset of (x, y)
        items = [part[i] for i in range(len(part))]
        x = torch.stack([torch.as_tensor(item[0]) for item in items])
        y = torch.as_tensor([torch.as_tensor(item[1]).item() for item in items])
    else:
        raise PluginError(f"data set '{name}' loaded a {type(part).__name__}, not (x, y) or a Dataset")
    if tuple(x.shape[1:]) != shape or len(x) != len(y):
        raise PluginError(
            f"data set '{name}' declares {len(shape)}-d samples of shape {list(shape)} but loaded "
            f"x of shape {list(x.shape)} and {len(y)} targets"
        )
    if math.prod(x.shape) == 0:
        raise PluginError(f"data set '{name}' loaded no examples")
    return x, y
