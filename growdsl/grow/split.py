"""`split(...)`: splitting steepest descent as a growth transform (Liu et al. 2019; the fast,
energy-aware variant of Wang et al. 2019; signed splitting of Wu et al. 2020).

`propose` scores every neuron of every splittable, growable layer by the loss decrease its best
split predicts to second order; each candidate's edit is `Widen(layer, (neuron, ...))` (one copy
per added offspring), so the shared carry copies the neuron, its BN entries and its consumer
columns; `init` then moves each copy along ±ε v and shares the outgoing columns by the scheme's
weights. The math lives in
`growdsl.grow.splitting`; docs/methods/splitting.md explains every option. `method: random` is
the baseline the papers compare against: random neurons, random directions, the same update.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from growdsl.errors import SpecError
from growdsl.grow.eps_search import EpsSearch, decrease_measurer, search_eps
from growdsl.grow.net import Net
from growdsl.grow.registry import register_transform
from growdsl.grow.splitting.eigen import EigenPairs, exact_eigenpairs, fast_eigenpairs
from growdsl.grow.splitting.factors import SplitFactors, shared_factors
from growdsl.grow.splitting.schemes import (
    POSITIVE,
    NeuronSplits,
    Scheme,
    best_splits,
    signed_three,
    signed_two,
)
from growdsl.grow.splitting.sites import NotSplittable, SplitSite, find_site
from growdsl.grow.surgery import Carry, Init, axes, incoming_keys, widen_blocker
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
from growdsl.ir.cost import added_cost
from growdsl.ir.dataflow import DataFlow
from growdsl.ir.edits import Widen
from growdsl.ir.graph import ArchGraph
from growdsl.lang.ast import Call, Name, Value
from growdsl.lazy import torch
from growdsl.options import BadValue, Option, integer, number


def _one_of(*names: str):  # noqa: ANN202 - a Check
    expected = " or ".join(names)

    def check(value: Value) -> str:
        if isinstance(value, Name) and value.id in names:
            return value.id
        raise BadValue(expected)

    return check


def _eps_value(value: Value) -> float | str:
    """`eps`: a number >= 0 (0 is refused in a grow block with its own message) or `auto`."""
    if isinstance(value, Name) and value.id == "auto":
        return "auto"
    try:
        return number(0.0)(value)
    except BadValue:
        raise BadValue("a number >= 0, or auto (a line search on the scoring batch)") from None


SPLIT_OPTIONS: dict[str, Option] = {
    **step_options(0.25, "split"),
    "eps": Option(0.01, _eps_value, "step ε along the eigenvector, or auto (a line search)"),
    "method": Option(
        "fast",
        _one_of("exact", "fast", "signed", "random"),
        "how the eigenpairs are found, or signed, or random (a baseline)",
    ),
    "solver": Option("fast", _one_of("exact", "fast"), "eigen-solver of method: signed"),
    "c": Option(1.0, number(0.0, lo_open=True), "signed split's weight constant"),
    "scheme": Option("two", _one_of("two", "three"), "signed split with two or three copies"),
    "samples": Option(256, integer(1), "training samples the splitting matrices average over"),
    "iters": Option(20, integer(1), "fast solver: most Lanczos steps (products with S)"),
    "tol": Option(1e-4, number(0.0, lo_open=True), "fast solver: estimated relative error of λ to stop at"),
}


@sendable
@dataclass(frozen=True)
class SplitChoice:
    """A candidate's payload: split `neuron` by `scheme` along unit direction `direction` (θ space:
    the incoming weights flattened, then the bias); `eigenvalue` is None for a random split. With
    `eps: auto`, `eps` is the ε the step's line search `search` chose (else the option's ε)."""

    neuron: int
    scheme: Scheme
    direction: torch.Tensor
    eigenvalue: float | None
    eps: float | None = None
    search: EpsSearch | None = None


@dataclass
class SplitTransform(OptionsTransform):
    """The `split` transform of a grow block; options as in `SPLIT_OPTIONS`."""

    OPTIONS: ClassVar[dict[str, Option]] = SPLIT_OPTIONS

    name: str = "split"

    @classmethod
    def refuse_conflicts(cls, options: dict[str, Any], call: Call) -> None:
        """Options of one method given with another, and `eps: auto` with nothing to predict."""
        given = call.keywords
        method = options["method"]
        for signed_only in ("solver", "c", "scheme"):
            if signed_only in given and method != "signed":
                raise SpecError(
                    f"split option '{signed_only}' applies to method: signed only", given[signed_only].span
                )
        if method in ("exact", "random") and ("iters" in given or "tol" in given):
            key = "iters" if "iters" in given else "tol"
            raise SpecError(f"split option '{key}' applies to the fast solver only", given[key].span)
        if method == "random" and "samples" in given:
            raise SpecError("split option 'samples' does not apply to method: random", given["samples"].span)
        if method == "random" and options["eps"] == "auto":
            raise SpecError(
                "eps: auto compares the predicted loss decrease with the measured one, and "
                "method: random predicts none",
                given["eps"].span,
                expected="a number such as eps: 0.01",
            )

    def continual(self) -> SplitTransform:
        """Never: a split changes an old neuron, which continual learning keeps frozen."""
        raise SpecError(
            "split changes old neurons, which continual learning keeps frozen",
            self.call.span if self.call is not None else None,
            expected="firefly(wider: N), which adds new neurons",
        )

    # ------------------------------------------------------------ where

    def sites(self, graph: ArchGraph) -> tuple[list[SplitSite], dict[str, str]]:
        """The layers this transform acts on, and why each other target layer is left alone."""
        flow = DataFlow(graph)
        found, skipped = [], {}
        for node in sorted(targets(graph, self.options["on"], self.on_span), key=graph.ops().index):
            attrs = graph[node]
            blocker = widen_blocker(graph, node, flow)
            if not attrs.get("width"):
                skipped[node] = "its width is fixed (no range such as 8..128)"
            elif blocker is not None:
                skipped[node] = blocker
            else:
                try:
                    found.append(find_site(graph, node, flow))
                except NotSplittable as why:
                    skipped[node] = str(why)
        return found, skipped

    def limit(self, net: Net) -> int | None:
        """`count`, or `frac` of the current neurons of the layers split acts on (at least one)."""
        sites, _ = self.sites(net.graph)
        return self._limit(net.graph, sites)

    def _limit(self, graph: ArchGraph, sites: list[SplitSite]) -> int:
        """`limit` for sites already found (finding them builds the graph's data flow)."""
        return step_limit(self.options, sum(graph[s.node]["args"]["out"] for s in sites))

    # ------------------------------------------------------------ scoring

    def _eigenpairs(self, factors: SplitFactors, rng: torch.Generator) -> EigenPairs:
        method = self.options["method"]
        signed = method == "signed"
        solver = self.options["solver"] if signed else method
        if solver == "exact":
            return exact_eigenpairs(factors, largest=signed)
        return fast_eigenpairs(
            factors, largest=signed, iters=self.options["iters"], tol=self.options["tol"], generator=rng
        )

    def _signed_scheme(self) -> Scheme | None:
        if self.options["method"] != "signed":
            return None
        c = self.options["c"]
        return signed_two(c) if self.options["scheme"] == "two" else signed_three(c)

    def propose(self, net: Net, train: Pair, loss_fn: LossFn, rng: torch.Generator) -> list[Candidate]:
        """One candidate per neuron whose best split predicts a loss decrease, scored by it."""
        sites, _ = self.sites(net.graph)
        if not sites:
            return []
        if self.options["method"] == "random":
            return self._random_candidates(net, sites, rng)
        x, y = train
        take = torch.randperm(len(x), generator=rng)[: self.options["samples"]].to(x.device)
        device = net.device
        batch = (x[take].to(device), y[take].to(device))
        factors = shared_factors(net.model, sites, *batch, loss_fn)
        auto = self.options["eps"] == "auto"
        eps = 1.0 if auto else self.options["eps"]  # with auto: decreases per ε², scaled below
        limit = self._limit(net.graph, sites)
        candidates = []
        for layer in factors:
            pairs = self._eigenpairs(layer, rng)
            splits = best_splits(pairs, eps, self._signed_scheme())
            best = _best_neurons(splits, net.graph, layer.site.node, limit)
            # one transfer per layer, not per neuron: a wide layer proposes hundreds of neurons
            chosen = torch.tensor(best, dtype=torch.long, device=splits.decrease.device)
            kinds, decreases = splits.scheme[chosen].tolist(), splits.decrease[chosen].tolist()
            eigenvalues = splits.eigenvalue[chosen].tolist()
            directions = splits.direction[chosen].detach().cpu().unbind()
            for i, kind, decrease, eigenvalue, direction in zip(
                best, kinds, decreases, eigenvalues, directions, strict=True
            ):
                scheme = splits.schemes[kind]
                candidates.append(
                    Candidate(
                        self.name,
                        Widen(layer.site.node, (i,) * scheme.added),
                        decrease,
                        detail={"neuron": i, "scheme": scheme.name, "eigenvalue": eigenvalue},
                        payload=SplitChoice(i, scheme, direction, eigenvalue),
                    )
                )
        return self._line_search(net, candidates, batch, loss_fn, limit) if auto else candidates

    def _line_search(
        self, net: Net, candidates: list[Candidate], batch: Pair, loss_fn: LossFn, limit: int
    ) -> list[Candidate]:
        """`eps: auto` (growdsl/grow/eps_search.py): the line search runs on the splits this step
        would take on its own (the `limit` best by predicted decrease per added parameter); the
        chosen ε then sets every candidate's ε and score (each decrease scales as ε²)."""
        costs: dict[tuple[str, int], int] = {}  # one per layer and scheme size, not per neuron
        for c in candidates:
            key = (c.node, len(c.edit.added))
            if key not in costs:
                costs[key] = max(added_cost(net.graph, c.edit)[0], 1)
        taken = sorted(candidates, key=lambda c: c.score / costs[c.node, len(c.edit.added)], reverse=True)
        taken = taken[:limit]
        if not taken:
            return candidates
        unit = sum(c.score for c in taken)  # the predicted decrease at ε = 1
        measure = decrease_measurer(net, self, batch, loss_fn)
        search = search_eps(lambda e: e * e * unit, lambda e: measure([_at_eps(c, e) for c in taken]))
        return [_at_eps(c, search.eps, search) for c in candidates]

    def _random_candidates(self, net: Net, sites: list[SplitSite], rng: torch.Generator) -> list[Candidate]:
        """The baseline: every neuron of every site, a random positive score and a random unit
        direction, split by the positive scheme; nothing is learned from the data. The score is a
        uniform draw times the neuron's cost, so the policy's ranking by score per parameter picks
        neurons uniformly, whatever layer they are in."""
        state = net.model.state_dict()
        candidates = []
        for site in sites:
            weight_key, bias_key = incoming_keys(net.graph, site.node)
            weight = state[weight_key]
            dim = weight[0].numel() + (bias_key is not None)
            params, _ = added_cost(net.graph, Widen(site.node, (None,) * POSITIVE.added))
            scores = torch.rand(weight.shape[0], generator=rng, dtype=torch.float64) + 1e-12
            directions = torch.randn(weight.shape[0], dim, generator=rng, dtype=torch.float64)
            directions = (directions / directions.norm(dim=1, keepdim=True)).to(weight.dtype)
            for i, score in enumerate(scores.tolist()):
                candidates.append(
                    Candidate(
                        self.name,
                        Widen(site.node, (i,) * POSITIVE.added),
                        score * params,
                        detail={"neuron": i, "scheme": POSITIVE.name},
                        payload=SplitChoice(i, POSITIVE, directions[i], None),
                    )
                )
        return candidates

    # ------------------------------------------------------------ applying

    def init(self, chosen: list[Candidate]) -> Init:
        """Place the offspring of the chosen splits of one layer (see `_place_offspring`)."""
        splits: list[SplitChoice] = [c.payload for c in chosen]
        eps = self.options["eps"]  # "auto": each split carries the ε its line search chose
        return lambda net, done: _place_offspring(net, done, splits, eps)

    def describe(self, chosen: list[Candidate], net: Net) -> dict[str, Any]:
        splits: list[SplitChoice] = [c.payload for c in chosen]
        node = chosen[0].node
        detail = {
            "method": self.options["method"],
            "split": [s.neuron for s in splits],
            "added": sum(s.scheme.added for s in splits),
            "width": net.graph[node]["args"]["out"],
        }
        if all(s.eigenvalue is not None for s in splits):
            detail["eigenvalues"] = [round(s.eigenvalue, 8) for s in splits]
        detail["eps"] = self.options["eps"] if splits[0].eps is None else splits[0].eps
        if splits[0].search is not None:
            detail["eps_search"] = splits[0].search.record()
        return detail


register_transform("split", SplitTransform.from_call)


def _best_neurons(splits: NeuronSplits, graph: ArchGraph, node: str, limit: int) -> list[int]:
    """The neurons of `node` worth proposing: those predicting a decrease, best first, no more than
    one step could take from this layer (`limit`, and the room left in its width range); the
    policy ranks by score per added parameter, which within one layer and scheme is by score."""
    room = graph[node]["width"][1] - graph[node]["args"]["out"]
    added = torch.tensor([s.added for s in splits.schemes], device=splits.decrease.device)
    per_neuron = splits.decrease / added[splits.scheme]
    order = torch.argsort(per_neuron, descending=True)[: min(limit, room)]
    helps = (splits.decrease[order] > 0).tolist()
    return [i for i, good in zip(order.tolist(), helps, strict=True) if good]


def _at_eps(cand: Candidate, eps: float, search: EpsSearch | None = None) -> Candidate:
    """`cand` (scored and placed at ε = 1) at `eps`: its predicted decrease scales as ε²."""
    payload = dataclasses.replace(cand.payload, eps=eps, search=search)
    return dataclasses.replace(cand, score=cand.score * eps * eps, payload=payload)


def _place_offspring(net: Net, done: Carry, splits: list[SplitChoice], eps: float | str) -> None:
    """In place on the freshly widened `net`: copy k of a neuron gets θ + ε δ_k v and w_k of the
    outgoing columns (the neuron itself is copy 0; the carry lists the added neurons in order)."""
    node, new = done.edit.node, done.new_neurons
    state = net.model.state_dict()
    weight_key, bias_key = incoming_keys(net.graph, node)
    weight, bias = state[weight_key], state[bias_key] if bias_key else None
    fan_in = weight[0].numel()
    share = torch.ones(weight.shape[0], dtype=weight.dtype)
    added = iter(new)
    with torch.no_grad():
        theta_old = {
            s.neuron: (weight[s.neuron].clone(), bias[s.neuron].clone() if bias is not None else None)
            for s in splits
        }
        for s in splits:
            expected = fan_in + (bias is not None)
            if s.direction.numel() != expected:
                raise ValueError(
                    f"split direction of {node} has {s.direction.numel()} entries, the neuron {expected}"
                )
            v, step = s.direction.to(weight), eps if s.eps is None else s.eps
            w0, b0 = theta_old[s.neuron]
            copies = [s.neuron] + [next(added) for _ in range(s.scheme.added)]
            for index, offset, w_k in zip(copies, s.scheme.offsets, s.scheme.weights, strict=True):
                weight[index] = w0 + step * offset * v[:fan_in].reshape(w0.shape)
                if bias is not None:
                    bias[index] = b0 + step * offset * v[fan_in]
                share[index] = w_k
        for axis in axes(net.graph, node, state):
            if axis.role == "consumer":
                factors = share.repeat_interleave(axis.spread).to(state[axis.key])
                shape = [-1 if d == axis.dim else 1 for d in range(state[axis.key].dim())]
                state[axis.key].narrow(axis.dim, axis.offset, len(factors)).mul_(factors.view(shape))
