"""`firefly(...)`: firefly descent as a growth transform (Wu, Liu, Stone, Liu, NeurIPS 2020).

`propose` builds the step's augmented net (`augment.py`: new neurons, splits and new layers, each
behind a gate), optimises the candidates' own tensors briefly with every gate on (stage 1:
RMSprop, the authors' small penalty), then scores every candidate by its first-order loss
decrease from one backward pass at the gates' zero (stage 2). Each candidate holds its edit: a
new neuron `Widen(layer, (None,))`, a split `Widen(layer, (neuron,))` (the neuron replaced by its
two offspring: one neuron added, as the authors apply it), a new layer `AppendCopy(repeat)`.
The policy keeps the best greedily; the shared step applies their edits through the one carry,
and `init` writes the chosen candidates' learned tensors into what the edits added.
docs/methods/firefly.md explains every option.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from growdsl.errors import SpecError
from growdsl.grow import collective
from growdsl.grow.firefly.augment import Augmented, augment
from growdsl.grow.net import Net
from growdsl.grow.registry import register_transform
from growdsl.grow.surgery import (
    Carry,
    Init,
    Overwrite,
    axes,
    incoming_keys,
    scale_outgoing_columns,
    widen_blocker,
)
from growdsl.grow.transform import (
    Candidate,
    LossFn,
    OptionsTransform,
    Pair,
    step_limit,
    step_options,
    targets,
)
from growdsl.grow.wire import sendable
from growdsl.ir.dataflow import DataFlow
from growdsl.ir.edits import AppendCopy, Widen, apply_edit
from growdsl.ir.graph import ArchGraph
from growdsl.lang.ast import Call
from growdsl.lazy import torch
from growdsl.options import Option, integer, number

FIREFLY_OPTIONS: dict[str, Option] = {
    "wider": Option(70, integer(0), "candidate new neurons per layer (the authors' 70)"),
    "candidates": Option(32, integer(0), "existing neurons per layer offered a split"),
    "deeper": Option(1, integer(0), "candidate new layers (repeat copies) per growable repeat"),
    "eps": Option(
        0.01, number(0.0), "gate ε at which new neurons and new layers are applied (a split: whole)"
    ),
    **step_options(0.3, "add"),
    "steps": Option(2, integer(0), "stage-1 optimisation steps on mini-batches"),
    "lr": Option(1e-3, number(0.0, lo_open=True), "stage-1 RMSprop learning rate"),
    "batch": Option(64, integer(1), "stage-1 mini-batch size"),
    "samples": Option(256, integer(1), "training samples the stage-2 scores average over"),
}


_CHANGE_OLD = ("candidates", "deeper")  # options whose candidates change old neurons or paths


@sendable
@dataclass(frozen=True)
class NewNeuron:
    """Payload: a fresh neuron's incoming row and bias, and its outgoing columns per consumer key
    (rows of the consumer as it is now); applied with the columns times ε."""

    theta: torch.Tensor
    bias: torch.Tensor | None
    outgoing: dict[str, torch.Tensor]


@sendable
@dataclass(frozen=True)
class Split:
    """Payload: split `neuron` whole, as the authors do: the neuron moves to `θ + u` and its one
    copy sits at `θ − u`, each with half the outgoing weights."""

    neuron: int
    u: torch.Tensor
    u_bias: torch.Tensor | None


@sendable
@dataclass(frozen=True)
class NewLayer:
    """Payload: a new copy of repeat `seq`; its tensors, keyed relative to the copy, are
    `identity + ε · direction` (buffers: `identity`)."""

    seq: str
    identity: dict[str, torch.Tensor]
    direction: dict[str, torch.Tensor]


@dataclass
class FireflyTransform(OptionsTransform):
    """The `firefly` transform of a grow block; options as in `FIREFLY_OPTIONS`."""

    OPTIONS: ClassVar[dict[str, Option]] = FIREFLY_OPTIONS

    name: str = "firefly"

    @classmethod
    def refuse_conflicts(cls, options: dict[str, Any], call: Call) -> None:
        """Every kind of candidate switched off: a step that proposes nothing."""
        if options["wider"] == options["candidates"] == options["deeper"] == 0:
            raise SpecError(
                "firefly with wider: 0, candidates: 0 and deeper: 0 proposes nothing",
                call.span,
                hint="give new neurons (wider), splits (candidates) or new layers (deeper)",
            )

    def continual(self) -> FireflyTransform:
        """New neurons only: a split changes an old neuron and a new layer sits in every task's
        path, so `candidates` and `deeper` given above 0 are SpecErrors; their defaults become 0."""
        given = self.call.keywords if self.call is not None else {}
        for name in _CHANGE_OLD:
            value = given.get(name)
            if value is not None and getattr(value, "value", 0) != 0:
                raise SpecError(
                    f"firefly's '{name}' changes old tasks' outputs (a split changes an old neuron, "
                    "a new layer sits in every task's path); with tasks it must be 0",
                    value.span,
                    expected=f"{name}: 0, or leave it out",
                )
        if self.options["wider"] == 0:
            raise SpecError(
                "with tasks, firefly grows new neurons only: give wider > 0",
                self.call.span if self.call is not None else None,
            )
        return dataclasses.replace(self, options={**self.options, **dict.fromkeys(_CHANGE_OLD, 0)})

    @property
    def eps(self) -> float:
        return self.options["eps"]

    # ------------------------------------------------------------ where

    def layers(self, graph: ArchGraph) -> list[str]:
        """Target layers that may gain neurons: a width range with room, nothing blocking."""
        flow = DataFlow(graph)
        chosen = targets(graph, self.options["on"], self.on_span)
        return [
            n
            for n in graph.ops()
            if n in chosen
            and graph[n].get("width")
            and graph[n]["width"][1] > graph[n]["args"]["out"]
            and widen_blocker(graph, n, flow) is None
        ]

    def repeats(self, graph: ArchGraph) -> list[str]:
        """Growable repeats with room whose body holds a target layer (or any, without `on`)."""
        chosen = targets(graph, self.options["on"], self.on_span)
        found = []
        for n in graph.walk():
            depth = graph[n].get("depth")
            if graph.kind(n) == "seq" and depth and depth[1] > len(graph.children(n)):
                inside = set(graph.ops(n))
                if self.options["on"] is None or inside & chosen:
                    found.append(n)
        return found

    def limit(self, net: Net) -> int | None:
        """`count`, or `frac` of the current neurons of the target layers (at least one)."""
        return step_limit(self.options, sum(net.graph[n]["args"]["out"] for n in self.layers(net.graph)))

    # ------------------------------------------------------------ stage 1 and 2

    def plan(
        self, net: Net, rng: torch.Generator
    ) -> tuple[list[tuple[str, int, list[int]]], list[tuple[str, int]]]:
        """Which candidates this step builds: per repeat, `deeper` copies (at most its room); per
        layer, new neurons (at most its room) and split sources (a random sample of `candidates`).

        A new copy is initialised to the identity at the width of the layer feeding it, so that
        layer is not offered new neurons or splits in the same step: new layers take precedence,
        and the layer can widen in a later step, once the repeat is full or `deeper` is 0."""
        graph = net.graph
        repeats, feeding = [], set()
        if self.options["deeper"]:
            for seq in self.repeats(graph):
                room = graph[seq]["depth"][1] - len(graph.children(seq))
                trial, _ = apply_edit(graph, AppendCopy(seq))
                copy = trial.children(seq)[-1]
                repeats.append((seq, min(self.options["deeper"], room)))
                feeding.update(DataFlow(trial).producers(copy))
        plans = []
        for node in self.layers(graph):
            if node in feeding:
                continue
            width = graph[node]["args"]["out"]
            room = graph[node]["width"][1] - width
            new = min(self.options["wider"], room)
            take = min(self.options["candidates"], width)
            sources = sorted(torch.randperm(width, generator=rng)[:take].tolist())
            if new or sources:
                plans.append((node, new, sources))
        return plans, [(seq, n) for seq, n in repeats if n]

    def propose(self, net: Net, train: Pair, loss_fn: LossFn, rng: torch.Generator) -> list[Candidate]:
        """Every candidate of the step, scored by its first-order loss decrease after stage 1."""
        plans, repeats = self.plan(net, rng)
        if not plans and not repeats:
            return []
        x, y = train
        device = net.device
        sample = torch.randperm(len(x), generator=rng)[: self.options["samples"]]
        xs, ys = x[sample].to(device), y[sample].to(device)
        aug = augment(net, plans, repeats, xs, self.eps, rng)
        self._stage_one(aug, x, y, loss_fn, rng)
        scores = aug.scores(xs, ys, loss_fn).detach().cpu()
        return self._candidates(net, aug, scores)

    def _stage_one(self, aug: Augmented, x, y, loss_fn: LossFn, rng: torch.Generator) -> None:
        """All candidates on (each gate at its applied value); optimise their own tensors."""
        if not self.options["steps"]:
            return
        # one update of one flat tensor: the same arithmetic as one per learned tensor
        optimizer = torch.optim.RMSprop([aug.flat], lr=self.options["lr"], foreach=True)
        device = aug.net.device
        for _ in range(self.options["steps"]):
            batch = torch.randperm(len(x), generator=rng)[: self.options["batch"]]
            xb, yb, weight = collective.my_rows(x[batch], y[batch])  # this rank's part of it
            loss = aug.objective(xb.to(device), yb.to(device), loss_fn, weight)
            optimizer.zero_grad()
            loss.backward()
            collective.all_sum_grads([aug.flat])  # the mini-batch's gradient, on every rank
            optimizer.step()
        aug.flat.grad = None

    def _candidates(self, net: Net, aug: Augmented, scores: torch.Tensor) -> list[Candidate]:
        out, learned = [], {name: t.detach() for name, t in aug.learned.items()}
        scores = scores.tolist()  # one transfer, not one per candidate
        for i, layer in enumerate(aug.layers):
            cols = layer.original_columns.to(net.device)  # the rows' columns that exist now
            thetas = learned[f"{i}.theta"].index_select(1, cols)
            us = learned[f"{i}.u"].index_select(1, cols)
            rows = {  # a consumer's rows as it is now (the augmented net widened it too)
                axis.key: net.graph[axis.key.rsplit(".", 1)[0].removesuffix(".pointwise")]["args"]["out"]
                for axis in layer.consumers
            }
            for j in range(layer.new):
                bias = learned[f"{i}.thetab"][j] if layer.bias_key else None
                outgoing = {}
                for axis in layer.consumers:
                    a = learned[f"{i}.out.{axis.key}"]
                    a = a.narrow(axis.dim, j * axis.spread, axis.spread)
                    outgoing[axis.key] = a[: rows[axis.key]].clone()
                payload = NewNeuron(thetas[j].clone(), bias, outgoing)
                score = scores[layer.gate + j]
                out.append(Candidate(self.name, Widen(layer.node, (None,)), score, {"kind": "new"}, payload))
            for k, neuron in enumerate(layer.sources):
                u = us[k].clone()
                ub = learned[f"{i}.ub"][k].clone() if layer.bias_key else None
                score = scores[layer.gate + layer.new + k]
                detail = {"kind": "split", "neuron": neuron}
                edit = Widen(layer.node, (neuron,))
                out.append(Candidate(self.name, edit, score, detail, Split(neuron, u, ub)))
        state = aug.net.model.state_dict()
        for block in aug.blocks:
            prefix = block.node + "."
            identity = {k[len(prefix) :]: v.clone() for k, v in state.items() if k.startswith(prefix)}
            direction = {k[len(prefix) :]: learned[f"b{block.gate}.{k}"].clone() for k in block.keys}
            payload = NewLayer(block.seq, identity, direction)
            out.append(
                Candidate(self.name, AppendCopy(block.seq), scores[block.gate], {"kind": "deeper"}, payload)
            )
        return out

    # ------------------------------------------------------------ applying

    def init(self, chosen: list[Candidate]) -> Init:
        """Write the chosen candidates' learned tensors into what their (merged) edit added."""
        if isinstance(chosen[0].edit, AppendCopy):
            layer: NewLayer = chosen[0].payload
            return Overwrite(lambda net, done: self._insert(net, layer))
        payloads = [c.payload for c in chosen]  # fresh neurons first, then copies, as merged
        return lambda net, done: self._place(net, done, payloads)

    def describe(self, chosen: list[Candidate], net: Net) -> dict[str, Any]:
        """`chosen`: how many candidates of each kind this line's edit took (a step's totals are
        the sum over its firefly lines); a widening also lists the split neurons."""
        kinds = [c.detail["kind"] for c in chosen]
        counts = {kind: kinds.count(kind) for kind in ("new", "split", "deeper")}
        if isinstance(chosen[0].edit, AppendCopy):
            return {"kind": "deeper", "chosen": counts}
        return {
            "new": counts["new"],
            "split": [c.payload.neuron for c in chosen if isinstance(c.payload, Split)],
            "width": net.graph[chosen[0].node]["args"]["out"],
            "chosen": counts,
        }

    def _insert(self, net: Net, layer: NewLayer) -> None:
        """The new copy (the repeat's last) gets `identity + ε · direction`."""
        copy = net.graph.children(layer.seq)[-1]
        state = net.model.state_dict()
        for rel, value in layer.identity.items():
            step = layer.direction.get(rel)
            target = state[f"{copy}.{rel}"]
            target.copy_(value if step is None else value + self.eps * step.to(value))

    def _place(self, net: Net, done: Carry, payloads: list[NewNeuron | Split]) -> None:
        """In place on the freshly widened `net`: the new neurons' rows and ε-scaled columns; per
        split, the neuron's row `θ + u` and its copy's `θ − u`, half the outgoing columns each
        (the carry gave the copy the neuron's row and columns)."""
        node, added = done.edit.node, list(done.new_neurons)
        new = [p for p in payloads if isinstance(p, NewNeuron)]
        splits = [p for p in payloads if isinstance(p, Split)]
        state = net.model.state_dict()
        weight_key, bias_key = incoming_keys(net.graph, node)
        weight, bias = state[weight_key], state[bias_key] if bias_key else None
        consumers = [a for a in axes(net.graph, node, state) if a.role == "consumer"]
        copies = added[len(new) :]  # one per split, in the order chosen
        with torch.no_grad():  # one write per tensor: the added neurons are consecutive rows
            if new:
                rows = torch.tensor(added[: len(new)], device=weight.device)
                weight.index_copy_(0, rows, torch.stack([n.theta for n in new]).to(weight))
                if bias is not None:
                    bias.index_copy_(0, rows, torch.stack([n.bias for n in new]).to(bias))
                for axis in consumers:  # stacked, then moved: one conversion per tensor
                    outgoing = torch.cat([n.outgoing[axis.key] for n in new], axis.dim).to(state[axis.key])
                    start = axis.offset + added[0] * axis.spread
                    cols = state[axis.key].narrow(axis.dim, start, len(new) * axis.spread)
                    cols.narrow(0, 0, outgoing.shape[0]).copy_(self.eps * outgoing)
            if splits:
                sources = torch.tensor([s.neuron for s in splits], device=weight.device)
                minus = torch.tensor(copies, device=weight.device)
                u = torch.stack([s.u for s in splits]).to(weight)
                theta = weight.index_select(0, sources)
                weight.index_copy_(0, sources, theta + u)
                weight.index_copy_(0, minus, theta - u)
                if bias is not None:
                    ub = torch.stack([s.u_bias for s in splits]).to(bias)
                    theta_b = bias.index_select(0, sources)
                    bias.index_copy_(0, sources, theta_b + ub)
                    bias.index_copy_(0, minus, theta_b - ub)
        shares = {}
        for split, copy in zip(splits, copies, strict=True):
            shares.update({split.neuron: 0.5, copy: 0.5})
        if shares:
            scale_outgoing_columns(net, node, shares)


register_transform("firefly", FireflyTransform.from_call)
