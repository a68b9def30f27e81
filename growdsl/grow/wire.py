"""Values sent between the ranks of a distributed run: JSON and raw tensor bytes, never pickle.

Rank 0's growth decision (`collective.decided`: the chosen edits as their JSON values, each
candidate's payload, the growth generator's state) reaches the other ranks as one uint8 tensor,
`pack(value)`, which `unpack` turns back into an equal value. Unpacking runs no code a sender
names: it reads JSON, copies bytes into tensors of a listed dtype, and builds only the dataclasses
registered here with `@sendable` (each transform's payload types). The layout:

    8 bytes     n, the header's length (unsigned, little-endian)
    n bytes     the header, UTF-8 JSON: {"value": V, "tensors": [{"dtype", "shape", "cuda", "grad"}, ...]}
    the rest    each tensor's elements, in the header's order, back to back

Semantics, exactly (V, the value as JSON; every JSON object is one of these tags, so a dict of
the value is never confused with one):

| value | V |
| --- | --- |
| None, bool, int, str, a finite float | itself |
| a NaN or infinite float | `{"float": "nan"}`, `{"float": "inf"}`, `{"float": "-inf"}` |
| list | a JSON array of its items' V |
| tuple (torch.Size too; not a named tuple) | `{"tuple": [...]}` (unpacked as a tuple) |
| dict (an OrderedDict too), keys of these kinds | `{"dict": [[K, V], ...]}` in order (unpacked as a dict) |
| tensor | `{"tensor": i}`, the i-th of `tensors`: its own elements only (not a view's whole storage) |
| pathlib path | `{"path": "..."}` (unpacked as a `Path`) |
| a `@sendable` dataclass | `{"dataclass": ["module.Name", [[field, V], ...]]}` |

Anything else (a function, an unregistered class) is refused at `pack` with `NotSendable`,
naming the type, rather than sent as code.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path, PurePath
from typing import Any, TypeVar

from growdsl import strict_json
from growdsl.errors import RunError
from growdsl.lazy import torch

T = TypeVar("T")
_SENDABLE: dict[str, type] = {}
_LENGTH = 8  # bytes of the header's length


class NotSendable(RunError):
    """A value of a kind the ranks cannot exchange (see the module docstring), or a malformed
    message; raised on every rank, so none waits for a value that never comes."""


def sendable(cls: type[T]) -> type[T]:
    """Let instances of dataclass `cls` travel between ranks (a transform's payload type): unpack
    builds it from its fields, by the name registered here and no other."""
    if not dataclasses.is_dataclass(cls) or any(not f.init for f in dataclasses.fields(cls)):
        raise TypeError(f"{cls.__qualname__}: only a dataclass whose fields are all init fields is sendable")
    _SENDABLE[_name(cls)] = cls
    return cls


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def pack(value: Any) -> torch.Tensor:
    """`value` as one uint8 tensor on the CPU (the layout of the module docstring)."""
    tensors: list[torch.Tensor] = []
    encoded = _encode(value, tensors)
    table = [
        {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape), "cuda": t.is_cuda,
         "grad": t.requires_grad}
        for t in tensors
    ]  # fmt: skip
    return _join({"value": encoded, "tensors": table}, tensors)


def pack_refusal(message: str) -> torch.Tensor:
    """A message that makes `unpack` raise NotSendable(message): what rank 0 sends when its own
    value cannot be packed, so the other ranks stop with the same error."""
    return _join({"refused": message}, [])


def _join(header: dict[str, Any], tensors: list[torch.Tensor]) -> torch.Tensor:
    text = strict_json.dumps(header, separators=(",", ":")).encode()  # finite: non-finite floats are tagged
    start = bytearray(len(text).to_bytes(_LENGTH, "little") + text)
    parts = [torch.frombuffer(start, dtype=torch.uint8)]
    parts += [t.detach().reshape(-1).contiguous().cpu().view(torch.uint8) for t in tensors]
    return torch.cat(parts)


def unpack(buffer: torch.Tensor) -> Any:
    """The value `pack` made `buffer` (uint8, any device) from; tensors that were on a GPU come
    back on this process's current GPU."""
    data = buffer.detach().cpu()
    try:
        size = int.from_bytes(bytes(data[:_LENGTH].tolist()), "little")
        header = strict_json.loads(bytes(data[_LENGTH : _LENGTH + size].numpy()).decode())
        if "refused" in header:
            raise NotSendable(str(header["refused"]))
        tensors = _tensors(header["tensors"], data, _LENGTH + size)
        return _decode(header["value"], tensors)
    except NotSendable:
        raise
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
        raise NotSendable(f"a malformed message between the ranks ({type(e).__name__}: {e})") from None


def _tensors(table: list[dict[str, Any]], data: torch.Tensor, offset: int) -> list[torch.Tensor]:
    out = []
    for entry in table:
        dtype = getattr(torch, entry["dtype"], None)
        shape = [int(n) for n in entry["shape"]]
        if not isinstance(dtype, torch.dtype) or any(n < 0 for n in shape):
            raise ValueError(f"not a tensor: {entry}")
        nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        if offset + nbytes > len(data):
            raise ValueError("the message ends inside a tensor")
        t = data[offset : offset + nbytes].clone().view(dtype).reshape(shape)
        if entry["cuda"]:
            t = t.to(torch.device("cuda", torch.cuda.current_device()))
        out.append(t.requires_grad_(bool(entry["grad"])))
        offset += nbytes
    if offset != len(data):
        raise ValueError("bytes past the last tensor")
    return out


def _encode(value: Any, tensors: list[torch.Tensor]) -> Any:
    if value is None or type(value) in (bool, int, str):  # an enum of int or str is a class
        return value
    if isinstance(value, float):  # NumPy's float64 too
        value = float(value)
        return value if math.isfinite(value) else {"float": str(value)}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):  # a named tuple is a class
        return {"tuple": [_encode(v, tensors) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[_encode(k, tensors), _encode(v, tensors)] for k, v in value.items()]}
    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided or value.is_quantized:
            raise NotSendable(f"a {value.layout} tensor cannot be sent between ranks (only dense ones)")
        tensors.append(value)
        return {"tensor": len(tensors) - 1}
    if isinstance(value, PurePath):
        return {"path": str(value)}
    cls = type(value)
    if _SENDABLE.get(_name(cls)) is cls:
        fields = [[f.name, _encode(getattr(value, f.name), tensors)] for f in dataclasses.fields(value)]
        return {"dataclass": [_name(cls), fields]}
    raise NotSendable(
        f"a {_name(cls)} cannot be sent between the ranks of a distributed run: a payload holds "
        "plain values, tensors and dataclasses marked @growdsl.grow.wire.sendable"
    )


_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _decode(value: Any, tensors: list[torch.Tensor]) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    (tag, inner), *rest = value.items()
    if rest:
        raise ValueError(f"not a tag: {sorted(value)}")
    if tag == "float":
        return _FLOATS[inner]
    if tag == "tuple":
        return tuple(_decode(v, tensors) for v in inner)
    if tag == "dict":
        return {_decode(k, tensors): _decode(v, tensors) for k, v in inner}
    if tag == "tensor":
        if type(inner) is not int or inner < 0:
            raise ValueError(f"not a tensor's index: {inner!r}")
        return tensors[inner]
    if tag == "path":
        return Path(inner)
    if tag == "dataclass":
        name, fields = inner
        if name not in _SENDABLE:
            raise ValueError(f"{name} is not a sendable dataclass")
        return _SENDABLE[name](**{field: _decode(v, tensors) for field, v in fields})
    raise ValueError(f"unknown tag {tag!r}")
