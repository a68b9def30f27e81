"""What a path-level edit's `init` sets after the carry (docs/methods/pathlevel.md, "Exactness").

The carry alone already makes replication-add, split-concat and insert exact: the copies of a
`branch mean` are equal, a `branch concat`'s paths hold the layer's rows (and its bn's entries) in
order, an inserted `identity` has nothing to set. Two things are left to an init:

- `perturb_copies`: replication-add's noise. Every weight tensor `W` of paths 1.. of a
  replicated branch gains `N(0, (noise · std(W))²)` entry-wise (path 0 stays the old layer), so
  the copies can drift apart in training. The mean merge divides the perturbation by the number
  of paths: the output changes by `(1/n) Σ_k J_k δ_k`, first order in `noise`.
- `make_identity`: a replacement of an `identity` edge computes the identity again: a conv or
  sepconv the Dirac kernel, the `bn` after it the identity from the statistics of its input
  (`growdsl.grow.deepen.identity_values`: `running_mean = β = mean`, `running_var = var`,
  `γ = sqrt(var + eps)`, exact in eval mode). A `k x k` pool is *not* the identity (a max pool
  takes the largest of the window, an average pool blurs it); it is left as it is and the step
  logs the measured change (`delta_out`).
"""

from __future__ import annotations

from growdsl.grow.deepen import InputStats, identity_values, measure_output, nonneg_input
from growdsl.grow.net import Net
from growdsl.grow.surgery import Init
from growdsl.ir.edits import Graft, Several, Wrap
from growdsl.ir.ops import WEIGHT_OPS
from growdsl.lazy import torch


def parts(edit) -> tuple:
    """The edits of a `Several`, or the edit alone."""
    return edit.edits if isinstance(edit, Several) else (edit,)


def perturb_copies(net: Net, edit, noise: float, seed: int) -> None:
    """Add replication noise to paths 1.. of every `branch mean` the edit made (see above)."""
    if noise <= 0:
        return
    generator = torch.Generator().manual_seed(seed)
    state = net.model.state_dict()
    for part in parts(edit):
        if not isinstance(part, Wrap) or part.merge != "mean":
            continue
        for path in net.graph.children(part.node)[1:]:
            for op in net.graph.ops(path):
                if net.graph[op]["op"] not in WEIGHT_OPS:
                    continue
                for key in sorted(k for k in state if k.startswith(op + ".") and k.endswith("weight")):
                    w = state[key]
                    step = torch.randn(w.shape, generator=generator, dtype=torch.float64)
                    w.add_((noise * float(w.double().std()) * step).to(w))


def make_identity(net: Net, edit, stats: list[InputStats]) -> None:
    """Make each grafted replacement the identity on inputs like `stats[i]` (the i-th graft's);
    a pool is left as it is (not the identity: see above)."""
    grafts = [p for p in parts(edit) if isinstance(p, Graft)]
    state = net.model.state_dict()
    for part, stat in zip(grafts, stats, strict=True):
        if net.graph[part.node].get("op") in ("maxpool", "avgpool"):
            continue  # not the identity: kept, its change measured
        for key, value in identity_values(net.graph, part.node, state, stat).items():
            state[key].copy_(value)


def replaced_stats(net: Net, edit, xs: torch.Tensor) -> tuple[InputStats, ...]:
    """Input statistics, over the sample `xs`, of each identity edge the edit replaces (in the
    order of its grafts), measured on the net before the edit: what `make_identity` needs."""
    grafts = [p.node for p in parts(edit) if isinstance(p, Graft)]
    return tuple(measure_output(net, n, xs, nonneg_input(net.graph, n)) for n in grafts)


def path_level_init(noise: float, seed: int, stats: tuple[InputStats, ...]) -> Init:
    """The `init` of a path-level edit: replication noise on the copies (seeded by `seed`), the
    identity on replaced edges (from `stats`, see `replaced_stats`)."""

    def init(net: Net, done) -> None:
        perturb_copies(net, done.edit, noise, seed)
        make_identity(net, done.edit, list(stats))

    return init
