"""One growth step, the same for every transform: propose, decide, apply through the one carry.

`grow_step` is what the training loop runs when the schedule says so: every transform of the
`grow` block proposes scored candidates (each holding its edit), the policy decides (greedy by
score per added parameter, within budgets and ranges), and `apply_chosen` applies the chosen
edits through `surgery.carry`, each transform's `init` setting what its edits added. The
optimizer follows every carry; each applied edit becomes one `grow` line of the history with its
JSON form (`edit`, so the growth can be replayed) and the measured change of the network's outputs
on a fixed probe batch (`delta_out`).

Order of application: candidates of one transform that widen the same layer merge into one
widening (fresh neurons first, then copies, each in the order chosen); edits that are not
widenings go first, then widenings from the last layer to the first, so a layer's payloads (a
split direction over its current inputs) still match its inputs when it is applied.

Precision: a growth step computes in fp32 whatever precision the net trains in (`train {
precision bf16 }`: growdsl/run/precision.py). The weights are fp32 already; `grow_step` turns
autocast off for the whole step, so the statistics every transform computes (splitting matrices
and their eigenpairs, Rayleigh quotients, firefly's and path-level scores) and `delta_out` are
fp32 even when the step runs inside an autocast region (a user's own training loop).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from growdsl import ir
from growdsl.grow import collective
from growdsl.grow.carry import carried_optimizer
from growdsl.grow.guard import propose_finite
from growdsl.grow.net import Net
from growdsl.grow.surgery import Carry, carry
from growdsl.grow.transform import Candidate, LossFn, Pair, Transform
from growdsl.ir.edits import Renames, Widen, compose_renames, edit_from_json, edit_to_json, rename_edit
from growdsl.lazy import torch

if TYPE_CHECKING:
    from growdsl.grow.policy import GrowthPolicy

PROBE = 256  # the first training samples: the probe batch `delta_out` is measured on


@dataclass
class Applied:
    """The result of applying chosen candidates: the new net, the carries in the order done (so
    the optimizer state follows), and one history record per applied edit (see `grow_line`)."""

    net: Net
    carries: list[Carry]
    records: list[dict[str, Any]]


def apply_chosen(
    net: Net,
    chosen: list[tuple[Transform, list[Candidate]]],
    *,
    generator: torch.Generator | None = None,
    probe: torch.Tensor | None = None,
) -> Applied:
    """Apply each transform's chosen candidates to `net` (see the module docstring for the order);
    `probe` is the batch `delta_out` is measured on (none measured without it). Old net untouched."""
    order = {node: i for i, node in enumerate(net.graph.ops())}
    groups = [(t, edit, picks) for t, cands in chosen for edit, picks in merged(cands)]
    groups.sort(
        key=lambda g: (isinstance(g[1], Widen), -order.get(g[1].target, 0) if isinstance(g[1], Widen) else 0)
    )
    renames: Renames = {}
    carries, records = [], []
    before = _probe_outputs(net, probe)
    params_after = ir.param_count(net.graph)
    for transform, edit, picks in groups:
        edit = rename_edit(edit, renames)
        params_before = params_after  # counted once per graph
        net, done = carry(net, edit, transform.init(picks), generator)
        renames = compose_renames(renames, done.renames)
        after = _probe_outputs(net, probe)
        params_after = ir.param_count(net.graph)
        records.append(
            {
                "transform": transform.name,
                "node": edit.target,
                "params_before": params_before,
                "params_after": params_after,
                "score": sum(c.score for c in picks),
                "edit": edit_to_json(edit),
                "delta_out": _max_change(before, after),
                "detail": transform.describe(picks, net),
            }
        )
        carries.append(done)
        before = after
    return Applied(net, carries, records)


def merged(cands: list[Candidate]) -> list[tuple[Any, list[Candidate]]]:
    """One transform's chosen candidates as edits to apply: the widenings of one layer merge into
    one (fresh neurons first, then copies, each in the order chosen), every other edit stands
    alone; first appearance decides the order."""
    groups: dict[Any, list[Candidate]] = {}
    for cand in cands:
        key = ("widen", cand.edit.node) if isinstance(cand.edit, Widen) else ("one", id(cand))
        groups.setdefault(key, []).append(cand)
    out = []
    for picks in groups.values():
        if isinstance(picks[0].edit, Widen):
            picks = sorted(picks, key=lambda c: c.edit.added[0] is not None)  # stable: fresh first
            added = tuple(s for c in picks for s in c.edit.added)
            out.append((Widen(picks[0].edit.node, added), picks))
        else:
            out.append((picks[0].edit, picks))
    return out


def _probe_outputs(net: Net, probe: torch.Tensor | None) -> torch.Tensor | None:
    if probe is None:
        return None
    training = net.model.training
    net.model.eval()
    try:
        with torch.no_grad():
            return net.model(probe.to(net.device))
    finally:
        net.model.train(training)


def _max_change(before: torch.Tensor | None, after: torch.Tensor | None) -> float | None:
    """Max |after − before| over the probe's outputs; None when not measured or not finite."""
    if before is None or after is None:
        return None
    change = float((after - before).abs().max())
    return change if change == change and change != float("inf") else None


def nothing_grew(
    transforms: list[Transform],
    candidates: dict[int, list[Candidate]],
    skipped: list[dict[str, Any]],
    epoch: int,
) -> list[dict[str, Any]]:
    """A `grow_skipped` line for each transform of a step that added nothing (those the guard
    skipped have theirs), saying why: it proposed nothing, nothing it proposed was predicted to
    lower the loss (the policy takes only scores > 0), or nothing fit the ranges and the budget."""
    guarded = {line["transform"] for line in skipped}
    lines = []
    for i, transform in enumerate(transforms):
        if transform.name in guarded:
            continue
        cands = candidates.get(i, [])
        if not cands:
            reason = "no candidate: the transform found nothing to propose"
        elif max(c.score for c in cands) <= 0:
            best = max(c.score for c in cands)
            reason = f"no candidate predicted to lower the loss: {len(cands)} scored, the best {best:.3g}"
        else:
            reason = "no candidate fits the ranges or this step's share of the budget"
        lines.append({"event": "grow_skipped", "epoch": epoch, "transform": transform.name, "reason": reason})
    return lines


def grow_step(
    state: Any,
    policy: GrowthPolicy,
    train: Pair,
    rng: torch.Generator,
    *,
    loss_fn: LossFn,
    make_optimizer: Callable[[Any], torch.optim.Optimizer],
    make_schedule: Callable[[torch.optim.Optimizer, int], Any],
    last_epoch: int,
) -> list[dict[str, Any]]:
    """One growth step on a training state (`growdsl.run.loop.TrainState`): propose, select, apply;
    the state gets the new graph and model, and the optimizer and schedule the policy's
    `after_growth` says: the optimizer's state carried or a fresh optimizer, the schedule (built by
    `make_schedule(optimizer, epochs it spans)`) continued from its position over the run or
    restarted over the epochs left. Returns the step's `grow` lines (also appended to
    `state.history`); none when nothing grew."""
    steps_done = len({r["epoch"] for r in state.history if r["event"] == "grow"})
    share = policy.step_budget(state.graph, state.epoch, last_epoch, steps_done)
    if share is None:
        return []
    net = Net(state.graph, state.model)
    with torch.autocast(net.device.type, enabled=False):  # fp32 statistics: the module docstring
        candidates, skipped = propose_finite(policy.transforms, net, train, loss_fn, rng, state.epoch)
        chosen = policy.select(net, candidates, share)
        skipped, chosen = rank0_decision(skipped, chosen, rng)  # one decision for every rank
        state.history.extend(skipped)  # non-finite statistics skip a transform (grow/guard.py)
        picked = [(t, picks) for t, picks in zip(policy.transforms, chosen, strict=True) if picks]
        if not picked:  # a due step that adds nothing says why, or a run could fail to grow in silence
            state.history.extend(nothing_grew(policy.transforms, candidates, skipped, state.epoch))
            return []
        applied = apply_chosen(net, picked, generator=rng, probe=train[0][:PROBE])
    collective.check_same(applied.net.model.state_dict(), f"after the growth step of epoch {state.epoch}")
    if policy.after.optimizer == "fresh":
        optimizer = make_optimizer(applied.net.model.parameters())
    else:
        optimizer = carried_optimizer(
            state.optimizer, state.model, applied.net.model, applied.carries, make_optimizer
        )
    if policy.after.schedule == "restart":
        scheduler = make_schedule(optimizer, last_epoch - state.epoch)
    else:
        scheduler = make_schedule(optimizer, last_epoch)
        if scheduler is not None and state.scheduler is not None:
            scheduler.load_state_dict(state.scheduler.state_dict())
    state.graph, state.model, state.optimizer, state.scheduler = (
        applied.net.graph,
        applied.net.model,
        optimizer,
        scheduler,
    )
    lines = [grow_line(state.epoch, r) for r in applied.records]
    state.history.extend(lines)
    return lines


def rank0_decision(
    skipped: list[dict[str, Any]], chosen: list[list[Candidate]], rng: torch.Generator
) -> tuple[list[dict[str, Any]], list[list[Candidate]]]:
    """Rank 0's decision on every rank of a distributed run (as is, alone): its skipped lines, its
    chosen candidates and the state of its growth generator, which the carry draws fresh weights
    from (docs/distributed.md)."""
    if not collective.active():
        return skipped, chosen
    return from_decision(collective.decided(decision(skipped, chosen, rng)), rng)


def decision(
    skipped: list[dict[str, Any]], chosen: list[list[Candidate]], rng: torch.Generator
) -> dict[str, Any]:
    """A step's decision as the value the ranks exchange (growdsl/grow/wire.py): edits as their
    JSON values, payloads as they are (sendable dataclasses of tensors and plain values)."""
    return {
        "skipped": skipped,
        "chosen": [
            [(c.transform, edit_to_json(c.edit), c.score, c.detail, c.payload) for c in picks]
            for picks in chosen
        ],
        "rng": rng.get_state(),
    }


def from_decision(
    sent: dict[str, Any], rng: torch.Generator
) -> tuple[list[dict[str, Any]], list[list[Candidate]]]:
    """The skipped lines and chosen candidates of a `decision`; `rng` takes its generator state."""
    rng.set_state(sent["rng"])
    return sent["skipped"], [
        [Candidate(t, edit_from_json(e), score, detail, payload) for t, e, score, detail, payload in picks]
        for picks in sent["chosen"]
    ]


GROW_LINE_KEYS = ("transform", "node", "params_before", "params_after", "score", "edit", "delta_out")


def grow_line(epoch: int, record: dict[str, Any]) -> dict[str, Any]:
    """One `grow` line of history.jsonl, in the one format every transform shares: the fixed keys
    first, the transform's own under `detail`."""
    return {
        "event": "grow",
        "epoch": epoch,
        **{k: record[k] for k in GROW_LINE_KEYS},
        "detail": record["detail"],
    }
