"""`growdsl run --tensorboard DIR`: a run's history as TensorBoard event files, written live.

`TensorBoardLog` is a history-record consumer: the run calls it with each batch of new records,
as it appends them to `history.jsonl`, so TensorBoard shows a run while it trains. What it writes
(through `torch.utils.tensorboard`, which needs the `tensorboard` package: growdsl[tensorboard]):

| record | TensorBoard |
| --- | --- |
| `epoch` | scalars at step = epoch: `train/loss`, `held_out/acc`, `held_out/loss`, `size/params`, |
| | `size/flops`, `time/epoch_s` |
| `grow` | text `growth` at step = epoch: the transform, the node, params before -> after, what it added |
| `tasks_done` | scalars `tasks/avg_acc` and `tasks/acc/<task>` |
| (the end) | hparams: the spec's training settings and growth transforms, with the final metrics |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from growdsl import strict_json
from growdsl.errors import MissingDependencyError
from growdsl.lang.ast import Num, Spec, TransformStmt, Value
from growdsl.lang.format import format_call, format_value

EPOCH_SCALARS = {
    "loss": "train/loss",
    "acc": "held_out/acc",
    "held_out_loss": "held_out/loss",
    "params": "size/params",
    "flops": "size/flops",
    "time": "time/epoch_s",
}


def hparams(spec: Spec) -> dict[str, Any]:
    """The settings a run is compared by in TensorBoard's HPARAMS tab, as TensorBoard takes them
    (numbers and strings): the model, the data call, each `train` setting as written, and the
    growth transforms."""
    out: dict[str, Any] = {
        "model": spec.model.name,
        "data": format_call(spec.data) if spec.data else "digits",
    }
    for setting in spec.train.settings if spec.train else ():
        out[f"train.{setting.name}"] = spec_value(setting.value)
    if spec.grow is not None:
        calls = [format_call(s.call) for s in spec.grow.statements if isinstance(s, TransformStmt)]
        out["grow"] = ", ".join(calls)
    return out


def spec_value(value: Value) -> int | float | str:
    """A number as a number (TensorBoard can sort and plot it), anything else as written."""
    return value.value if isinstance(value, Num) else format_value(value)


class TensorBoardLog:
    """Writes history records to a TensorBoard log folder; call it with each batch of records,
    then `finish(final_metrics)` once."""

    def __init__(self, log_dir: str | Path, hparams: dict[str, Any] | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # torch's writer imports the tensorboard package
            raise MissingDependencyError("--tensorboard", "tensorboard", "tensorboard") from e
        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.hparams = dict(hparams or {})

    def __call__(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            event, epoch = record.get("event"), record.get("epoch", 0)
            if event == "epoch":
                for key, tag in EPOCH_SCALARS.items():
                    if record.get(key) is not None:
                        self.writer.add_scalar(tag, record[key], epoch)
            elif event == "grow":
                self.writer.add_text("growth", growth_text(record), epoch)
            elif event == "tasks_done":
                self.writer.add_scalar("tasks/avg_acc", record["avg_acc"], epoch)
                for task, acc in enumerate(record.get("accs", [])):
                    self.writer.add_scalar(f"tasks/acc/{task}", acc, epoch)
        self.writer.flush()  # so TensorBoard shows the epoch now, not after flush_secs

    def finish(self, final_metrics: dict[str, Any]) -> None:
        """The run's hparams with its final metrics (numbers only), then close the files."""
        metrics = {
            f"final/{k}": float(v)
            for k, v in final_metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        self.writer.add_hparams(self.hparams, metrics, run_name=".")
        self.writer.close()


def growth_text(record: dict[str, Any]) -> str:
    """One growth line as Markdown: `split` on `mlp.hidden1`: 1,536 -> 2,034 params (added 6)."""
    text = (
        f"`{record.get('transform')}` on `{record.get('node')}`: "
        f"{record.get('params_before', 0):,} -> {record.get('params_after', 0):,} params"
    )
    detail = record.get("detail") or {}
    if "added" in detail:
        text += f" (added {detail['added']})"
    return text + f"  \n`{strict_json.dumps(detail)[:500]}`"
