"""`Grower`: growth inside the user's own training loop (docs/grower.md).

growdsl's runner trains a spec end to end; a user with a trainer of their own keeps it and hands
growdsl only the growth. A `Grower` lowers a spec's model and reads its `grow` block; the user
trains `grower.model` with their own loop and optimizer and calls `grower.step(optimizer, data)`
once an epoch (or once every so many steps: the grow block's `every N epochs` counts calls).
When the policy says so, the call is exactly one growth step of a growdsl run
(`growdsl.grow.step.grow_step`: propose, select, apply the one carry) and hands back the grown
module and an optimizer of the same class over its parameters, with the old one's state carried
(or fresh, as `after_growth(optimizer: fresh)` says); otherwise it hands back what it was given.

The grower keeps the history a run would write (an `epoch` line per call, with the loss the caller
reports, which `when plateau(...)` reads, and a `grow` line per edit), so its growth is the run's:
the same generator seeds (the spec's seed and the call's number), the same budgets over the
spec's `epochs`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from growdsl import ir, lang
from growdsl.compile import compile_graph
from growdsl.errors import SpecError
from growdsl.grow.policy import GrowthPolicy
from growdsl.ir.graph import ArchGraph
from growdsl.lang.ast import Spec
from growdsl.lazy import nn, torch

SCORING_ROWS = 1024  # training rows a step scores candidates on, at most (a run uses its whole split)


@dataclass
class _LoopState:
    """What a growth step reads and replaces (the fields of a run's `TrainState` it uses)."""

    graph: ArchGraph
    model: nn.Module
    optimizer: Any = None
    scheduler: Any = None
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


class Grower:
    """A spec's model and growth policy, for a training loop of the user's own.

    `spec` is a `.grow` file, its text or a parsed `Spec`; it must have a `grow` block. The input
    shape and class count come from its data set, or from `input_shape` and `classes` when the
    user's loop brings its own data. The model is compiled under the spec's seed."""

    def __init__(
        self,
        spec: str | Path | Spec,
        *,
        input_shape: tuple[int, ...] | None = None,
        classes: int | None = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        from growdsl.run import datasets
        from growdsl.run.config import train_config
        from growdsl.run.loop import compute_loss

        self.spec = _as_spec(spec)
        if self.spec.grow is None:
            raise SpecError("a Grower needs a spec with a grow block", self.spec.model.span)
        if input_shape is None:
            info = datasets.describe(self.spec.data)
            input_shape, classes = info.input_shape, info.classes if classes is None else classes
        graph = ir.lower(self.spec, tuple(input_shape), classes)
        self.config = train_config(self.spec.train, regression=classes is None)
        self.policy = GrowthPolicy.from_block(self.spec.grow).for_run(self.config.epochs)
        if self.policy.after.warmup:
            raise SpecError(
                "after_growth(warmup: N) ramps the learning rate of growdsl's own training loop; "
                "a Grower hands the optimizer back to yours",
                self.spec.grow.span,
                hint="remove warmup and warm the learning rate up in your loop after a step (grower.grew)",
            )
        for transform in self.policy.transforms:
            transform.check(graph)
        self.loss_fn = loss_fn or (lambda out, y: compute_loss(self.config.loss, out, y))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            model = compile_graph(graph)
        self._state = _LoopState(graph, model)

    @property
    def model(self) -> nn.Module:
        """The current net (a `GrowNet`: its state-dict keys are node ids)."""
        return self._state.model

    @property
    def graph(self) -> ArchGraph:
        return self._state.graph

    @property
    def epochs(self) -> int:
        """The spec's `train { epochs N }`: the calls the growth schedule and budgets span."""
        return self.config.epochs

    @property
    def history(self) -> list[dict[str, Any]]:
        """An `epoch` line per call and a `grow` line per edit, as a run's history.jsonl."""
        return self._state.history

    def step(
        self, optimizer: torch.optim.Optimizer, data: Any, loss: float | None = None
    ) -> tuple[nn.Module, torch.optim.Optimizer]:
        """Count one epoch; grow when the policy says so. `optimizer` trains `self.model`;
        `data` is training data to score candidates on: a pair of tensors `(x, y)` or an iterable
        of such batches (a `DataLoader`), of which the first `SCORING_ROWS` rows are used; `loss`
        is the epoch's training loss (needed by `when plateau(...)`). Returns the net and the
        optimizer to go on with: new ones after a growth step, the ones given otherwise."""
        state = self._state
        state.optimizer = optimizer
        state.epoch += 1
        record = {"event": "epoch", "epoch": state.epoch, "loss": loss, "params": ir.param_count(state.graph)}
        if loss is None and self.policy.schedule.patience is not None:
            raise ValueError("this grow block grows on a plateau of the loss: pass step(..., loss=...)")
        state.history.append(record)
        if state.epoch < self.epochs and self.policy.schedule.due(state.epoch, state.history):
            make = _same_class(optimizer)
            grow = self.policy.hook(
                scoring_pair(data, _device(state.model)),
                self.loss_fn,
                make,
                lambda _optimizer, _epochs: None,
                self.config.seed,
                self.epochs,
            )
            grow(state, record)
        return state.model, state.optimizer

    @property
    def grew(self) -> bool:
        """Whether the last `step` grew the net."""
        return any(r["event"] == "grow" and r["epoch"] == self._state.epoch for r in self.history)


def _as_spec(spec: str | Path | Spec) -> Spec:
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, Path) or (isinstance(spec, str) and spec.endswith(".grow") and "\n" not in spec):
        return lang.load(spec)
    return lang.parse_text(spec, "<spec>")


def _same_class(optimizer: torch.optim.Optimizer) -> Callable[[Any], torch.optim.Optimizer]:
    """A factory of optimizers of `optimizer`'s class and defaults (the carry then loads each
    param group's own hyper-parameters and the carried state)."""
    return lambda params: type(optimizer)(params, **optimizer.defaults)


def _device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def scoring_pair(
    data: Any, device: torch.device, rows: int = SCORING_ROWS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to `rows` training rows as one pair `(x, y)` on `device`: `data` is a pair of tensors
    or an iterable of `(x, y)` batches (a DataLoader, whose batches may carry more)."""
    if isinstance(data, tuple | list) and len(data) == 2 and all(torch.is_tensor(d) for d in data):
        x, y = data
    else:
        xs, ys, seen = [], [], 0
        for batch in _batches(data):
            xs.append(batch[0])
            ys.append(batch[1])
            seen += len(batch[0])
            if seen >= rows:
                break
        if not xs:
            raise ValueError("Grower.step needs training data to score growth on: it got no batch")
        x, y = torch.cat(xs), torch.cat(ys)
    return x[:rows].to(device), y[:rows].to(device)


def _batches(data: Iterable[Any]) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    for batch in data:
        if not isinstance(batch, tuple | list) or len(batch) < 2:
            raise ValueError("Grower.step's data must give (x, y) batches")
        yield batch[0], batch[1]
