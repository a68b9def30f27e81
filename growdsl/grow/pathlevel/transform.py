"""`pathlevel(...)`: path-level network transformation as a growth transform (Cai, Yang, Zhang,
Han, Yu, ICML 2018; docs/methods/pathlevel.md).

`propose` builds, at every target layer (and every `identity` edge, for `replace`; every identity
and pool, for `split_concat`), the edit of each asked-for transform (`sites.py`), made to every
use of a shared cell unless `shared: false`;
then scores each candidate by a measured quantity: the candidate net and the unchanged net each
take the same few SGD steps on a training sample, and the score is how much lower the
candidate's loss is then (`choose: score`); or a uniform draw (`choose: random`, the baseline).
The shared policy takes candidates within `count`, the budgets and the ranges; the shared step
applies them through the one carry, and `init` (`inits.py`) sets replication noise and the
identity of a replaced edge.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar

from growdsl.errors import SpecError
from growdsl.grow import collective
from growdsl.grow.deepen import InputStats
from growdsl.grow.net import Net, rebuild
from growdsl.grow.pathlevel import sites
from growdsl.grow.pathlevel.inits import parts, path_level_init, replaced_stats
from growdsl.grow.registry import register_transform
from growdsl.grow.surgery import Init, carry
from growdsl.grow.transform import (
    Candidate,
    LossFn,
    OptionsTransform,
    Pair,
    labels_option,
    targets,
)
from growdsl.grow.wire import sendable
from growdsl.ir.cost import added_cost
from growdsl.ir.edits import INPUT_SPLIT, Group
from growdsl.ir.graph import ArchGraph
from growdsl.lang.ast import Call, ListValue, Name, Value
from growdsl.lazy import torch
from growdsl.options import BadValue, Option, boolean, integer, number

OPS = ("replicate_add", "split_concat", "insert", "replace")


def _names(allowed: tuple[str, ...]):  # noqa: ANN202 - a Check
    def check(value: Value) -> list[str]:
        items = value.items if isinstance(value, ListValue) else (value,)
        if not items or not all(isinstance(v, Name) and v.id in allowed for v in items):
            raise BadValue(f"a list of {', '.join(allowed)}")
        return list(dict.fromkeys(v.id for v in items))

    return check


def _one_of(*names: str):  # noqa: ANN202 - a Check
    def check(value: Value) -> str:
        if isinstance(value, Name) and value.id in names:
            return value.id
        raise BadValue(" or ".join(names))

    return check


def _odd(value: Value) -> int:
    k = integer(1, 7)(value)
    if k % 2 == 0:
        raise BadValue("an odd kernel size from 1 to 7 (the identity needs a centre)")
    return k


PATHLEVEL_OPTIONS: dict[str, Option] = {
    "ops": Option(list(OPS), _names(OPS), "the path-level transforms proposed"),
    "on": Option(None, labels_option, "labels of the layers (or cells) to transform"),
    "count": Option(1, integer(1), "candidates one step may take"),
    "choose": Option("score", _one_of("score", "random"), "measured loss decrease, or random"),
    "shared": Option(True, boolean, "a change to one use of a block is made to every use"),
    "copies": Option(2, integer(2, 3), "replication-add's paths (the paper's 2 or 3)"),
    "noise": Option(6e-3, number(0.0), "replication noise: std of a copy's W entries over std(W)"),
    "replace_with": Option(["conv", "sepconv"], _names(sites.REPLACEMENTS), "what replaces an identity"),
    "k": Option(3, _odd, "kernel size of a replacement conv, sepconv or pool"),
    "steps": Option(5, integer(0), "SGD steps a candidate and the unchanged net take when scored"),
    "lr": Option(0.05, number(0.0, lo_open=True), "learning rate of those steps"),
    "batch": Option(64, integer(1), "mini-batch size of those steps"),
    "samples": Option(256, integer(1), "training samples the steps draw from and the loss averages"),
}
RELATIVE_TOL = 1e-5  # a loss gain below this share of the loss is rounding, not a gain


@sendable
@dataclass(frozen=True)
class Payload:
    """What `init` needs: the replication noise's seed, and the input statistics of each
    replaced identity edge (in the order of the edit's grafts)."""

    seed: int
    stats: tuple[InputStats, ...] = ()


@dataclass
class PathLevelTransform(OptionsTransform):
    """The `pathlevel` transform of a grow block; options as in `PATHLEVEL_OPTIONS`."""

    OPTIONS: ClassVar[dict[str, Option]] = PATHLEVEL_OPTIONS

    name: str = "pathlevel"

    @classmethod
    def refuse_conflicts(cls, options: dict[str, Any], call: Call) -> None:
        """`replace_with` without `replace` among the ops."""
        given = call.keywords
        if "replace_with" in given and "replace" not in options["ops"]:
            raise SpecError(
                "replace_with is given but ops has no replace",
                given["replace_with"].span,
                hint="add replace to ops",
            )

    def continual(self) -> PathLevelTransform:
        raise SpecError(
            "pathlevel changes old paths (a replicated, split or replaced edge sits in every task's "
            "path), so it cannot grow a continual run",
            self.call.span if self.call is not None else None,
            hint="use firefly(wider: N) with tasks",
        )

    def limit(self, net: Net) -> int | None:
        return self.options["count"]

    # ------------------------------------------------------------ where

    def edits(self, graph: ArchGraph) -> list[tuple[str, str, Any]]:
        """Every (transform, node, edit) this step may propose, one per shared cell position."""
        ops, shared = self.options["ops"], self.options["shared"]
        builders = {
            "replicate_add": functools.partial(sites.replicate_add, copies=self.options["copies"]),
            "split_concat": sites.split_concat,
            "insert": sites.insert_identity,
        }
        layers = [n for n in graph.ops() if n in targets(graph, self.options["on"], self.on_span)]
        found, seen = [], set()
        for node in layers:
            for op in (o for o in ops if o in builders):
                self._add(found, seen, graph, op, node, builders[op], shared)
        if "split_concat" in ops:  # identities and pools split their input channels
            for node in self.labelled_ops(graph, INPUT_SPLIT):
                self._add(found, seen, graph, "split_concat", node, sites.split_concat, shared)
        if "replace" in ops:
            for node in self.labelled_ops(graph, ("identity",)):
                for what in self.options["replace_with"]:
                    build = functools.partial(sites.replace_identity, op=what, k=self.options["k"])
                    self._add(found, seen, graph, f"replace:{what}", node, build, shared)
        return found

    def _add(self, found, seen, graph, op, node, build, shared) -> None:
        uses = sites.uses_of(graph, node) if shared else [node]
        key = (op, tuple(sorted(uses)))
        if key in seen:
            return
        seen.add(key)
        edit = sites.every_use(graph, node, build, shared)
        if edit is not None:
            found.append((op, node, edit))

    def labelled_ops(self, graph: ArchGraph, names: tuple[str, ...]) -> list[str]:
        """The live ops of kinds `names` a transform may act on (the `identity` edges `replace`
        grows, the identities and pools `split_concat` splits): every one, or those under (or
        being) a node `on:` labels."""
        live = [n for n in graph.ops() if graph[n]["op"] in names]
        labels = self.options["on"]
        if labels is None:
            return live
        targets(graph, labels, self.on_span)  # unknown labels are errors
        roots = [n for label in labels for n in graph.by_label(label)]
        return [n for n in live if any(n == r or n.startswith(r + ".") for r in roots)]

    # ------------------------------------------------------------ scoring

    def propose(self, net: Net, train: Pair, loss_fn: LossFn, rng: torch.Generator) -> list[Candidate]:
        """Every applicable edit, scored (see the module docstring)."""
        found = self.edits(net.graph)
        if not found:
            return []
        x, y = train
        sample = torch.randperm(len(x), generator=rng)[: self.options["samples"]]
        xs, ys = x[sample].to(net.device), y[sample].to(net.device)
        order = [
            torch.randperm(len(xs), generator=rng)[: self.options["batch"]]
            for _ in range(self.options["steps"])
        ]
        base = self._trained_loss(net, xs, ys, order, loss_fn) if self.options["choose"] == "score" else 0.0
        out = []
        for op, node, edit in found:
            payload = Payload(
                int(torch.randint(0, 2**31, (1,), generator=rng)), replaced_stats(net, edit, xs)
            )
            cand = Candidate(self.name, edit, 0.0, {"op": op, "at": node}, payload)
            if self.options["choose"] == "random":
                score = self._uniform_rank(net, edit, rng)
            else:
                grown, _ = carry(net, edit, self.init([cand]), torch.Generator().manual_seed(payload.seed))
                gain = base - self._trained_loss(grown, xs, ys, order, loss_fn, copy=False)
                score = gain if gain > RELATIVE_TOL * abs(base) else 0.0
            out.append(Candidate(self.name, edit, score, {"op": op, "at": node}, payload))
        return out

    def _uniform_rank(self, net: Net, edit, rng: torch.Generator) -> float:
        """`choose: random`'s score: a uniform draw times the parameters the edit adds (at least
        1). The policy takes the best score per added parameter, so every candidate is equally
        likely to come first; a bare uniform score would make a parameter-free insert or
        split-concat win whenever one applies (docs/methods/pathlevel.md, "Choosing")."""
        return (float(torch.rand((), generator=rng)) + 1e-12) * max(added_cost(net.graph, edit)[0], 1)

    def _trained_loss(self, net: Net, xs, ys, order, loss_fn: LossFn, copy: bool = True) -> float:
        """The sample's loss (eval mode) after `steps` SGD steps on a copy of `net` (on `net`
        itself, a throw-away candidate, with `copy=False`)."""
        trial = rebuild(net.graph, net.model.state_dict()) if copy else net
        trial.model.train()
        optimizer = torch.optim.SGD(trial.model.parameters(), lr=self.options["lr"])
        params = list(trial.model.parameters())
        for batch in order:  # the ranks of a distributed run share each batch (grow/collective.py)
            xb, yb, weight = collective.my_rows(xs[batch], ys[batch])
            loss = collective.part_of_mean(loss_fn(trial.model(xb), yb), weight)
            optimizer.zero_grad()
            loss.backward()
            collective.all_sum_grads(params)
            optimizer.step()
        trial.model.eval()
        with torch.no_grad():
            xb, yb, weight = collective.my_rows(xs, ys)
            return float(collective.all_sum(collective.part_of_mean(loss_fn(trial.model(xb), yb), weight)))

    # ------------------------------------------------------------ applying

    def init(self, chosen: list[Candidate]) -> Init:
        """Replication noise on the copies, the identity on replaced edges (`inits.py`)."""
        payload: Payload = chosen[0].payload
        return path_level_init(self.options["noise"], payload.seed, payload.stats)

    def describe(self, chosen: list[Candidate], net: Net) -> dict[str, Any]:
        cand = chosen[0]
        return {**cand.detail, "uses": sum(not isinstance(p, Group) for p in parts(cand.edit))}


register_transform("pathlevel", PathLevelTransform.from_call)
