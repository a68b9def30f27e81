"""`--set key=value` on the command line: change a parsed spec without editing its file.

Keys: `train.<setting>` (replace or add a setting), `data.<option>` and `search.<option>` (replace
or add a keyword argument of the call), and `data` or `search` alone (replace the whole call).
The value is parsed as a spec value. Errors point into the item, quoted from a pseudo-file `--set`.
Whether a setting name is known is checked later, by the run config, exactly as for the spec.
"""

from __future__ import annotations

import re
from dataclasses import replace

from growdsl.errors import Span, SpecError, register_source
from growdsl.lang import ast
from growdsl.lang.parser import parse_value
from growdsl.lang.suggest import unknown_name_message

SOURCE = "--set"
SECTIONS = ("data", "search", "train")
_KEY = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\s*")


def apply_overrides(spec: ast.Spec, items: list[str]) -> ast.Spec:
    """`spec` with every `key=value` of `items` applied, left to right."""
    for item in items:
        spec = _apply(spec, item)
    return spec


def _error(item: str, message: str, start: int, end: int, **kw: str) -> SpecError:
    register_source(SOURCE, item)
    return SpecError(message, Span(SOURCE, 1, start + 1, 1, max(end, start + 1) + 1), **kw)


def _apply(spec: ast.Spec, item: str) -> ast.Spec:
    key, eq, raw = item.partition("=")
    usage = "section.option=value, e.g. train.epochs=5 or data.test=0.1"
    if not eq:
        raise _error(item, f"--set '{item}' has no '='", 0, len(item), expected=usage)
    match = _KEY.fullmatch(key)
    if match is None:
        raise _error(item, f"bad --set key '{key.strip()}'", 0, len(key), expected=usage)
    section, option = match[1], match[2]
    if section not in SECTIONS:
        raise _error(
            item, unknown_name_message("--set section", section, SECTIONS), match.start(1), match.end(1)
        )
    if not raw.strip():
        raise _error(item, f"--set {key.strip()}= has no value", len(key), len(item) + 1, expected=usage)
    value = _value(item, len(key) + 1)
    if section == "train":
        if option is None:
            raise _error(item, "--set train needs a setting: train.<setting>=value", 0, len(key))
        return replace(spec, train=_set_setting(spec.train, option, value))
    if section == "data":
        data = spec.data or ast.Call("digits")
        return replace(
            spec,
            data=_as_call(item, value, len(key) + 1) if option is None else _set_arg(data, option, value),
        )
    if option is None:
        return replace(spec, search=ast.SearchDecl(_as_call(item, value, len(key) + 1), value.span))
    if spec.search is None:
        raise _error(
            item,
            f"the spec has no 'search' section to set '{option}' in",
            0,
            len(key),
            hint="give the whole call, e.g. --set search=random(trials: 20)",
        )
    return replace(spec, search=replace(spec.search, method=_set_arg(spec.search.method, option, value)))


def _value(item: str, offset: int) -> ast.Value:
    """Parse the value part, padded so that spans count columns from the start of the item."""
    try:
        return parse_value(" " * offset + item[offset:], SOURCE)
    finally:
        register_source(SOURCE, item)


def _as_call(item: str, value: ast.Value, offset: int) -> ast.Call:
    if isinstance(value, ast.Call):
        return value
    if isinstance(value, ast.Name):
        return ast.Call(value.id, (), value.span)
    raise _error(item, "expected a name or a call such as random(trials: 20)", offset, len(item))


def _set_setting(train: ast.TrainBlock | None, name: str, value: ast.Value) -> ast.TrainBlock:
    new = ast.Setting(name, value, value.span)
    if train is None:
        return ast.TrainBlock((new,), value.span)
    settings = train.settings
    if any(s.name == name for s in settings):
        return replace(train, settings=tuple(new if s.name == name else s for s in settings))
    return replace(train, settings=(*settings, new))


def _set_arg(call: ast.Call, key: str, value: ast.Value) -> ast.Call:
    new = ast.Arg(key, value, value.span)
    if key in call.keywords:
        return replace(call, args=tuple(new if a.key == key else a for a in call.args))
    return replace(call, args=(*call.args, new))
