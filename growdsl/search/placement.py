"""Where a population's members train: how many at once, and on which device.

A search's `backend` option (docs/search.md, "Placement") says where members train; this module
turns it into numbers and devices, without torch (`growdsl check` states the concurrency):

- `local`: `workers` worker processes (default the CPU cores), each training one member at a
  time on the spec's device.
- `local(gpus: [0, 1], per_member: 0.5)`: each member takes `per_member` of one GPU, so
  `floor(1 / per_member)` members share a GPU at once and the GPUs hold
  `slots = len(gpus) · floor(1 / per_member)` members at once (a member never spans two GPUs).
  `workers` defaults to the slots; more are not started: **concurrency = min(workers, slots)**.
  Each worker process holds one slot of a `DeviceQueue` for its life (its device `cuda:<id>`,
  one CUDA context per process) and gives it back when it dies, for the fresh worker that takes
  its place. The queue hands out the GPU with the fewest members on it, the first listed among
  equals (0, 1, 0, 1: two workers go on two GPUs, not one). A member may allocate at most
  `per_member` of its GPU's memory (torch's per-process memory fraction), so a member that
  outgrows its share fails alone, with an out-of-memory error of its own.
- `ray(gpus_per_member: 0.5)`: each member's Ray task asks for 1 CPU and 0.5 GPU (`num_gpus`);
  Ray packs `floor(1 / 0.5)` tasks on one GPU and makes the GPU it assigned the task's `cuda`
  device. How many run at once is the cluster's to say: min(CPUs, GPUs · floor(1 / share));
  for the local Ray instance a search starts, the CPUs are `workers` and the GPUs this machine's.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from growdsl.errors import SpecError
from growdsl.lang.ast import Call, ListValue, Name, Str, TrainBlock, Value
from growdsl.options import BadValue, Option, integer, number, read_options, string
from growdsl.run.cpus import usable_cpus


@dataclass(frozen=True)
class Backend:
    """Where members train: `local` (worker processes here) or `ray` (at `address`, or a Ray
    instance started for the run when None). `gpu_share` (None: no GPU placement) is the share of
    one GPU a member takes: `per_member` of `local(gpus: [...])`, on `gpus`, or
    `gpus_per_member` of `ray(...)`."""

    name: str
    address: str | None = None
    gpus: tuple[int, ...] = ()
    gpu_share: float | None = None


SHARE = number(0.0, 1.0, lo_open=True)  # of one GPU: a member trains on one device
BACKEND_FORMS = (
    'local, local(gpus: [0, 1], per_member: 0.5), ray, or ray(address: "auto", gpus_per_member: 0.5)'
)


def _gpu_list(value: Value) -> tuple[int, ...]:
    expected = "a non-empty list of distinct GPU numbers, such as [0, 1]"
    if not isinstance(value, ListValue) or not value.items:
        raise BadValue(expected)
    try:
        gpus = tuple(integer(0)(v) for v in value.items)
    except BadValue:
        raise BadValue(expected) from None
    if len(set(gpus)) != len(gpus):
        raise BadValue(expected)
    return gpus


LOCAL_OPTIONS = {
    "gpus": Option((), _gpu_list, "the GPUs members are placed on"),
    "per_member": Option(None, SHARE, "the share of one GPU a member takes (default 1)"),
}
RAY_OPTIONS = {
    "address": Option(None, string, "an existing cluster"),
    "gpus_per_member": Option(None, SHARE, "the GPUs each member's task asks Ray for"),
}


def read_backend(value: Value) -> Backend:
    """The `backend` option of a search (the forms of `BACKEND_FORMS`); a SpecError at the place
    of a mistake inside a call, BadValue for another form."""
    if isinstance(value, Name) and value.id in ("local", "ray"):
        return Backend(value.id)
    if isinstance(value, Call) and value.name == "local":
        opts = read_options(value, LOCAL_OPTIONS, "local option")
        if opts["per_member"] is not None and not opts["gpus"]:
            raise SpecError(
                "local option 'per_member' is the share of a GPU, and no gpus are given",
                value.keywords["per_member"].span,
                expected="local(gpus: [0], per_member: 0.5)",
            )
        share = opts["per_member"] if opts["per_member"] is not None else 1.0
        return Backend("local", gpus=opts["gpus"], gpu_share=share if opts["gpus"] else None)
    if isinstance(value, Call) and value.name == "ray":
        opts = read_options(value, RAY_OPTIONS, "ray option")
        return Backend("ray", opts["address"], gpu_share=opts["gpus_per_member"])
    raise BadValue(BACKEND_FORMS)


def check_device(backend: Value | None, train: TrainBlock | None) -> None:
    """A backend that places members on GPUs picks each member's GPU itself: a train block that
    says `device cpu`, or names one GPU (`cuda:1`), contradicts it (SpecError at the GPUs)."""
    if not isinstance(backend, Call) or train is None:
        return
    where = backend.keywords.get("gpus") or backend.keywords.get("gpus_per_member")
    setting = next((s for s in train.settings if s.name == "device"), None)
    if where is None or setting is None:
        return
    value = setting.value
    device = value.id if isinstance(value, Name) else value.value if isinstance(value, Str) else None
    if device == "cpu" or (device or "").startswith("cuda:"):
        raise SpecError(
            f"the backend places each member on a GPU, and the train block says device {device} "
            f"(line {setting.span.line})",
            where.span,
            hint="write device cuda or auto in the train block, or leave the GPUs out to train on "
            f"{'the CPU' if device == 'cpu' else device}",
        )


@dataclass(frozen=True)
class Slot:
    """Where one worker's members train: `device` (`cuda:1`; `cuda` on Ray, the GPU Ray assigned)
    and the share of that GPU's memory a member may take."""

    device: str
    share: float = 1.0


def per_gpu(share: float) -> int:
    """Members that fit on one GPU at once when each takes `share` of it (0 < share <= 1)."""
    return math.floor(1 / share + 1e-9)  # 1 / 0.1 is 9.999...: ten members, not nine


def gpu_slots(gpus: Sequence[int], share: float) -> int:
    """Members the GPUs `gpus` hold at once, each taking `share` of one GPU."""
    return len(gpus) * per_gpu(share)


class DeviceQueue:
    """The slots of a placement: `per_device` members on each of `devices` at once. `take` hands
    out the device with the fewest members on it (the first listed among equals), `give_back`
    returns one; a device is never handed out more than `per_device` times at once."""

    def __init__(self, devices: Sequence[str], per_device: int) -> None:
        if not devices or per_device < 1 or len(set(devices)) != len(devices):
            raise ValueError(
                f"a device queue needs distinct devices and per_device >= 1: {devices}, {per_device}"
            )
        self.devices, self.per_device = list(devices), per_device
        self.held: Counter[str] = Counter()

    @property
    def slots(self) -> int:
        return len(self.devices) * self.per_device

    @property
    def free(self) -> int:
        return self.slots - sum(self.held.values())

    def take(self) -> str:
        """A free slot's device; a ValueError when every slot is held (the pool starts no more
        workers than slots, so this is a bug, not a user's mistake)."""
        device = min(self.devices, key=lambda d: self.held[d])  # min keeps the first among equals
        if self.held[device] >= self.per_device:
            raise ValueError(f"every one of the {self.slots} slots is held")
        self.held[device] += 1
        return device

    def give_back(self, device: str) -> None:
        if self.held[device] < 1:
            raise ValueError(f"no slot on {device} is held")
        self.held[device] -= 1


def concurrency(backend: Backend, workers: int | None) -> int:
    """Members a search trains at once at most (its rounds may hold fewer): `workers` (default
    the cores this process may use, or with `gpus` the slots), never more than the GPUs' slots."""
    if backend.name == "local" and backend.gpu_share is not None:
        slots = gpu_slots(backend.gpus, backend.gpu_share)
        return min(workers or slots, slots)
    return workers or usable_cpus()


def describe(backend: Backend, workers: int | None) -> str:
    """What `growdsl check` says of a search's placement: how many members train at once, where."""
    n = concurrency(backend, workers)
    if backend.name == "ray":
        asks = "1 CPU" if backend.gpu_share is None else f"1 CPU and {backend.gpu_share:g} GPU"
        out = f"members train as Ray tasks of {asks} each"
        if backend.gpu_share is not None:
            out += f" (up to {per_gpu(backend.gpu_share)} on one GPU)"
        if backend.address is None:
            gpus = " and this machine's GPUs" if backend.gpu_share is not None else ""
            return out + f", on a Ray instance started here with {n} CPUs{gpus}: up to {n} at once"
        return out + f", as many at once as the cluster at {backend.address} has room for"
    if backend.gpu_share is None:
        if n == 1:
            return "members train one at a time, in this process"
        given = "workers" if workers else "the CPU cores"
        return f"up to {n} members train at once, one in each of {n} worker processes ({given})"
    per, slots = per_gpu(backend.gpu_share), gpu_slots(backend.gpus, backend.gpu_share)
    names = ", ".join(str(g) for g in backend.gpus)
    out = (
        f"up to {n} members train at once, {per} per GPU on GPU{'s' if len(backend.gpus) > 1 else ''} "
        f"{names} ({slots} slots, {backend.gpu_share:g} of a GPU each)"
    )
    if workers and workers > slots:
        out += f"; workers: {workers} is more than the slots, {slots} are started"
    return out
