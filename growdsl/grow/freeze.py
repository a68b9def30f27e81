"""Freezing old neurons: the masks of continual learning (firefly's second use, docs/methods/firefly.md).

When a task starts, every neuron that exists then belongs to the old tasks and is frozen: its
incoming weights and bias (its row), its batch-norm entries, and the old tasks' rows of the output
layer (their heads). What may train is whatever grows afterwards (new neurons: their rows, BN
entries and outgoing columns into new neurons and into the current task's head) and the heads of
the current and later tasks. A new neuron's outgoing columns into a frozen row are zero and stay
zero, so no old neuron, and no old head, sees anything new: old tasks' outputs are exactly those
of before.

`Freeze` is described by one number per weight op, how many of its first channels are old (the
output layer: the old tasks' classes, which come first), so it can be rebuilt from the history
after a resume and re-laid after each growth step (widening puts new channels after the old ones).

How the freeze is enforced, and why both ways: a hook zeroes the frozen entries of every gradient
(so nothing about them reaches the optimizer's statistics), and after every optimizer step the
frozen entries — parameters and batch-norm running statistics — are written back from a copy
taken when the freeze was laid. The write-back is what makes it exact whatever the optimizer: weight
decay and momentum (SGD's, Adam's moments carried from the task before) move a weight even when
its gradient is zero, and batch norm's running statistics move in every training forward pass.
"""

from __future__ import annotations

from growdsl.grow.surgery import axes
from growdsl.ir.dataflow import DataFlow
from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import WEIGHT_OPS
from growdsl.lazy import nn, torch

Masks = dict[str, "torch.Tensor"]


def weight_ops(graph: ArchGraph) -> list[str]:
    """The live weight ops, in execution order."""
    return [n for n in graph.ops() if graph[n]["op"] in WEIGHT_OPS]


def freeze_masks(
    graph: ArchGraph, state: dict[str, torch.Tensor], old: dict[str, int]
) -> tuple[Masks, Masks]:
    """(frozen, zero): per state key with per-channel entries, which entries are frozen, and
    which of those must be zero (a new channel's column in a frozen row). `old[node]` is how many
    of `node`'s first channels are old; a node not in `old` (a new layer) is all new. Entries no
    weight op's channels index (e.g. a batch norm on the network's input) are frozen whole."""
    frozen = {k: torch.ones_like(v, dtype=torch.bool) for k, v in state.items() if v.dim() > 0}
    new_columns = {k: torch.zeros_like(m) for k, m in frozen.items()}
    flow = DataFlow(graph)
    for node in weight_ops(graph):
        width, kept = graph[node]["args"]["out"], old.get(node, 0)
        if kept >= width:
            continue
        for axis in axes(graph, node, state, flow.reach(node)):
            start, length = axis.offset + kept * axis.spread, (width - kept) * axis.spread
            target = new_columns if axis.role == "consumer" else frozen
            target[axis.key].narrow(axis.dim, start, length).fill_(axis.role == "consumer")
    zero = {k: frozen[k] & new_columns[k] for k in frozen}
    return frozen, {k: z for k, z in zero.items() if bool(z.any())}


class Freeze:
    """The freeze of one task, laid on a model and its optimizer; `lay` again after the model or
    optimizer is replaced (a growth step)."""

    def __init__(self, old: dict[str, int]) -> None:
        self.old = dict(old)
        self.model: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._handles: list = []
        self._frozen: Masks = {}
        self._copy: dict[str, torch.Tensor] = {}

    def lay(self, graph: ArchGraph, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Zero new columns in frozen rows, copy the frozen entries, hook gradients and steps."""
        self.lift()
        state = model.state_dict()
        frozen, zero = freeze_masks(graph, state, self.old)
        with torch.no_grad():
            for key, mask in zero.items():
                state[key].masked_fill_(mask.to(state[key].device), 0)
        self._frozen = {k: m.to(state[k].device) for k, m in frozen.items() if bool(m.any())}
        self._copy = {k: state[k].detach().clone() for k in self._frozen}
        self._tensors = {k: state[k] for k in self._frozen}
        for name, param in model.named_parameters():
            if name in self._frozen:
                mask = self._frozen[name]
                self._handles.append(param.register_hook(lambda g, m=mask: g.masked_fill(m, 0)))
        self._handles.append(optimizer.register_step_post_hook(lambda *_: self.restore()))
        self.model, self.optimizer = model, optimizer

    def restore(self) -> None:
        """Write the frozen entries back from the copy (after every optimizer step)."""
        with torch.no_grad():
            for key, mask in self._frozen.items():
                self._tensors[key].copy_(torch.where(mask, self._copy[key], self._tensors[key]))

    def lift(self) -> None:
        """Remove the hooks (the masks no longer act)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.model = self.optimizer = None
