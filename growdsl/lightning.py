"""`GrowthCallback`: a `Grower` (growdsl/grow/grower.py) inside a Lightning `Trainer` (docs/grower.md).

Lightning does not change a module's architecture during `fit`; this callback does it from the
outside, at the end of each training epoch: it hands the grower the trainer's optimizer, its
training data and the epoch's logged loss, and when the net grew it puts the grown net in the
LightningModule's attribute that holds it (`net` by default) and the carried optimizer in the
trainer (and under the trainer's learning-rate schedulers). The LightningModule's parameters must
be exactly the net's (a module that wraps the net and computes its loss, as Lightning's own
examples do), trained by one optimizer, on one device.

Needs the `lightning` package: `pip install 'growdsl[lightning]'`.
"""

from __future__ import annotations

from typing import Any

from growdsl.errors import MissingDependencyError
from growdsl.grow.grower import Grower

try:
    from lightning.pytorch import Callback
except ImportError as e:  # pragma: no cover - the extra is installed wherever the tests run
    raise MissingDependencyError("the Lightning growth callback", "lightning", "lightning") from e


class GrowthCallback(Callback):
    """Grows `grower`'s net in a Lightning `Trainer`: one `Grower.step` per training epoch.

    `attribute` names the LightningModule's attribute that holds `grower.model`; `monitor` the
    logged metric passed as the epoch's loss (`when plateau(...)` needs it: log it with
    `self.log("train_loss", loss, on_epoch=True)`)."""

    def __init__(self, grower: Grower, attribute: str = "net", monitor: str = "train_loss") -> None:
        self.grower, self.attribute, self.monitor = grower, attribute, monitor

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if getattr(pl_module, self.attribute) is not self.grower.model:
            raise ValueError(f"the LightningModule's '{self.attribute}' is not the grower's model")
        if len(trainer.optimizers) != 1:
            raise ValueError("GrowthCallback grows a module trained by one optimizer")
        loss = trainer.callback_metrics.get(self.monitor)
        loss = float(loss) if loss is not None else None
        net, optimizer = self.grower.step(trainer.optimizers[0], trainer.train_dataloader, loss)
        if not self.grower.grew:
            return
        setattr(pl_module, self.attribute, net)
        trainer.optimizers = [optimizer]
        for config in trainer.lr_scheduler_configs:
            config.scheduler.optimizer = optimizer
