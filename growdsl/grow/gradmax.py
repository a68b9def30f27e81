"""`gradmax(...)`: GradMax as a growth transform (Evci, van Merriënboer, Unterthiner, Vladymyrov,
Pedregosa, ICLR 2022; docs/methods/gradmax.md).

A new neuron between a linear layer and the linear layer reading it starts with (almost) no
incoming weights, so the function is unchanged, and with the outgoing weights that make the
gradient of its incoming weights largest: the top left-singular vectors of the gradient
correlation `M = Σ_m g_m h_mᵀ` (`g` the gradient at the consumer's output, `h` the growing
layer's input), scaled to `scale` times the mean norm of the layer's existing outgoing columns.
Their incoming row is `−fan_in` times the matching right-singular vector: the direction the
first gradient step would take them (`fan_in: 0` is the paper's exact zero, under which a ReLU
neuron never trains in torch, whose relu'(0) is 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from growdsl.grow.net import Net
from growdsl.grow.newneurons.collect import SiteStats
from growdsl.grow.newneurons.place import NeuronValues
from growdsl.grow.newneurons.transform import NewNeuronTransform, Proposed
from growdsl.grow.registry import register_transform
from growdsl.grow.surgery import axes
from growdsl.grow.transform import step_options
from growdsl.lazy import torch
from growdsl.options import Option, integer, number

_RANK_TOL = 1e-8  # a singular value under this share of the largest counts as zero

GRADMAX_OPTIONS: dict[str, Option] = {
    **step_options(0.25, "add"),
    "scale": Option(0.5, number(0.0, lo_open=True), "outgoing norm, times the mean of the existing ones"),
    "fan_in": Option(1e-3, number(0.0), "norm of the incoming row (0: the paper's exact zero)"),
    "samples": Option(256, integer(1), "training samples the gradient correlation averages over"),
}


@dataclass(frozen=True)
class GradMaxDirections:
    """The SVD of one site's `M`: singular values `s` (descending), the outgoing directions (rows
    of `out`, left-singular vectors) and the incoming ones (rows of `inc`, right-singular)."""

    s: torch.Tensor
    out: torch.Tensor
    inc: torch.Tensor


def gradmax_directions(correlation: torch.Tensor, k: int) -> GradMaxDirections:
    """The top `k` singular triples of `M` [C, D]: with outgoing weights `ω = c·u_i` the incoming
    weights' gradient is `Mᵀω = c·s_i·v_i`, and among `k` orthonormal outgoing directions the
    total squared gradient norm `Σ‖Mᵀω_i‖²` is largest, `c²Σ s_i²`, for these. Directions past
    `M`'s numerical rank get no gradient at all and are left out (with a cross-entropy over C
    classes `M` has rank at most C − 1)."""
    u, s, vh = torch.linalg.svd(correlation, full_matrices=False)
    k = min(k, int((s > _RANK_TOL * s[0]).sum()) if len(s) else 0)  # M's rank: no gradient beyond
    return GradMaxDirections(s[:k], u[:, :k].T, vh[:k])


@dataclass
class GradMaxTransform(NewNeuronTransform):
    """The `gradmax` transform of a grow block; options as in `GRADMAX_OPTIONS`."""

    OPTIONS: ClassVar[dict[str, Option]] = GRADMAX_OPTIONS

    name: str = "gradmax"

    def neurons(self, stats: SiteStats, k: int, net: Net) -> list[Proposed]:
        """The top `k` directions, scored by the squared gradient norm of the neuron's incoming
        weights, `(c·s_i)²`: the first-order loss decrease of a gradient step on them, per unit
        of learning rate."""
        found = gradmax_directions(stats.correlation(), k)
        norm = self.options["scale"] * _mean_column_norm(net, stats.site.node)
        proposed = []
        for s, out, inc in zip(found.s.tolist(), found.out, found.inc, strict=True):
            values = NeuronValues(-self.options["fan_in"] * inc, norm * out)
            proposed.append(Proposed(values, (norm * s) ** 2, {"singular_value": round(s, 8)}))
        return proposed


def _mean_column_norm(net: Net, node: str) -> float:
    """The mean norm of `node`'s neurons' columns in the layer reading them (the paper's
    `mean_norm`); 1 when every column is zero."""
    state = net.model.state_dict()
    width = net.graph[node]["args"]["out"]
    (consumer,) = [a for a in axes(net.graph, node, state) if a.role == "consumer"]
    columns = state[consumer.key].narrow(1, consumer.offset, width)
    mean = float(columns.norm(dim=0).mean())
    return mean if mean > 0 else 1.0


register_transform("gradmax", GradMaxTransform.from_call)
