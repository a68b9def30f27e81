"""The path-level meta-controller: a bidirectional tree-LSTM over a cell's tree and three actors
(Cai et al. 2018; docs/methods/pathlevel.md, "The meta-controller").

`CellTree.of(graph, roots)` reads the subtrees under `roots` (one use of each cell) as the
encoder's input: a token per node (its kind, merge or op) and its children, in depth-first
order. `TreeLSTM` encodes it in two passes:

- bottom-up, a child-sum tree-LSTM (Tai et al. 2015): with x the node's token embedding and
  (h_k, c_k) its children's states, h̃ = Σ h_k, i = σ(W_i x + U_i h̃), o = σ(W_o x + U_o h̃),
  u = tanh(W_u x + U_u h̃), one forget gate per child f_k = σ(W_f x + U_f h_k),
  c = i ⊙ u + Σ f_k ⊙ c_k, h↑ = o ⊙ tanh(c) (a leaf has no children: h̃ = 0);
- top-down, an LSTM cell whose input is the node's h↑ and whose previous state is its parent's
  top-down state (zero at a root): h↓ = LSTMCell(h↑, (h↓_parent, c↓_parent)).

A node's state is [h↑, h↓]: what is under it and what is around it. Each actor is a one-hidden-layer
MLP (`ACTOR_HIDDEN` ReLU units, the authors' `actor_config` in arch_search_tree_cell.py) from a
node's state to the logits of its choices (`ACTORS`); a choice that does not apply at a node is
masked out (logit -inf). `encode(tree)` is what a decision reads: the encoder is re-run on the
cell as the earlier decisions left it (docs/methods/pathlevel.md, "The meta-controller").
`RandomPolicy` gives every allowed choice the same logit: the uniform baseline, sampled through
the same path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import BUILTIN_OPS

ACTORS: dict[str, tuple[str, ...]] = {
    "merge": ("keep", "add", "concat"),  # keep the layer, replication-add, split-concat
    "insert": ("no", "yes"),  # an identity node after the layer
    # what an identity edge becomes: the authors' 7 edge candidates (arch_search_tree_cell.py)
    "replace": (
        "identity",
        "3x3_sepconv",
        "5x5_sepconv",
        "7x7_sepconv",
        "1x1_conv",
        "3x3_maxpool",
        "3x3_avgpool",
    ),
}
# one token per built-in op: a plugin's op is `other`, so the controller's shape, and so its seeded
# initial weights, never depend on which plugins this process loaded before importing this module
TOKENS = ("seq", "branch:add", "branch:mean", "branch:concat", "choice", "other") + tuple(
    f"op:{name}" for name in sorted(BUILTIN_OPS)
)
HIDDEN = 32
ACTOR_HIDDEN = 500  # the authors' actors: one hidden layer of 500 ReLU units


def token(graph: ArchGraph, node: str) -> int:
    """The index in `TOKENS` of what `node` is: its kind, a branch's merge, an op's name."""
    kind = graph.kind(node)
    name = {"op": f"op:{graph[node].get('op')}", "branch": f"branch:{graph[node].get('merge')}"}.get(
        kind, kind
    )
    return TOKENS.index(name) if name in TOKENS else TOKENS.index("other")


@dataclass(frozen=True)
class CellTree:
    """The encoder's input: `nodes` in depth-first order (each parent before its children),
    their `tokens`, and each node's `children` and `parent` as indices into `nodes`."""

    nodes: tuple[str, ...]
    tokens: tuple[int, ...]
    children: tuple[tuple[int, ...], ...]
    parent: tuple[int | None, ...]

    @classmethod
    def of(cls, graph: ArchGraph, roots: list[str]) -> CellTree:
        nodes = [n for root in roots for n in graph.walk(root)]
        index = {n: i for i, n in enumerate(nodes)}
        children = tuple(tuple(index[c] for c in graph.live_children(n)) for n in nodes)
        parent: list[int | None] = [None] * len(nodes)
        for i, kids in enumerate(children):
            for k in kids:
                parent[k] = i
        return cls(tuple(nodes), tuple(token(graph, n) for n in nodes), children, tuple(parent))


class TreeLSTM(nn.Module):
    """The bidirectional tree-LSTM of the module docstring; `forward(tree)` returns the nodes'
    states, shape (len(tree.nodes), 2 · hidden)."""

    def __init__(self, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.hidden = hidden
        self.embed = nn.Embedding(len(TOKENS), hidden)
        self.w_iou = nn.Linear(hidden, 3 * hidden)
        self.u_iou = nn.Linear(hidden, 3 * hidden, bias=False)
        self.w_f = nn.Linear(hidden, hidden)
        self.u_f = nn.Linear(hidden, hidden, bias=False)
        self.down = nn.LSTMCell(hidden, hidden)

    def forward(self, tree: CellTree) -> torch.Tensor:
        x = self.embed(torch.tensor(tree.tokens, dtype=torch.long))
        zero = x.new_zeros(self.hidden)
        up_h: list[torch.Tensor] = [zero] * len(tree.nodes)
        up_c: list[torch.Tensor] = [zero] * len(tree.nodes)
        for i in reversed(range(len(tree.nodes))):  # children come after their parent
            kids = tree.children[i]
            hs = torch.stack([up_h[k] for k in kids]) if kids else x.new_zeros(0, self.hidden)
            cs = torch.stack([up_c[k] for k in kids]) if kids else x.new_zeros(0, self.hidden)
            gates_i, gates_o, gates_u = (self.w_iou(x[i]) + self.u_iou(hs.sum(0))).chunk(3)
            forget = torch.sigmoid(self.w_f(x[i]) + self.u_f(hs))
            up_c[i] = torch.sigmoid(gates_i) * torch.tanh(gates_u) + (forget * cs).sum(0)
            up_h[i] = torch.sigmoid(gates_o) * torch.tanh(up_c[i])
        down: list[tuple[torch.Tensor, torch.Tensor]] = [(zero, zero)] * len(tree.nodes)
        for i in range(len(tree.nodes)):
            above = down[p] if (p := tree.parent[i]) is not None else (zero, zero)
            h, c = self.down(up_h[i].unsqueeze(0), (above[0].unsqueeze(0), above[1].unsqueeze(0)))
            down[i] = (h.squeeze(0), c.squeeze(0))
        return torch.cat([torch.stack(up_h), torch.stack([h for h, _ in down])], dim=1)


class Controller(nn.Module):
    """The tree-LSTM and one actor per kind of decision (`ACTORS`)."""

    def __init__(self, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.encoder = TreeLSTM(hidden)
        self.actors = nn.ModuleDict(
            {
                name: nn.Sequential(
                    nn.Linear(2 * hidden, ACTOR_HIDDEN), nn.ReLU(), nn.Linear(ACTOR_HIDDEN, len(c))
                )
                for name, c in ACTORS.items()
            }
        )

    def encode(self, tree: CellTree) -> torch.Tensor:
        return self.encoder(tree)

    def logits(self, states: torch.Tensor, actor: str, node: int) -> torch.Tensor:
        return self.actors[actor](states[node])


class RandomPolicy:
    """The uniform baseline: every allowed choice equally likely; nothing to learn."""

    def encode(self, tree: CellTree) -> torch.Tensor:
        return torch.zeros(len(tree.nodes), 0)

    def logits(self, states: torch.Tensor, actor: str, node: int) -> torch.Tensor:
        return torch.zeros(len(ACTORS[actor]))


def distribution(logits: torch.Tensor, allowed: tuple[bool, ...]) -> torch.distributions.Categorical:
    """The actor's distribution over the allowed choices (the others masked out)."""
    mask = torch.tensor(allowed)
    return torch.distributions.Categorical(logits=logits.masked_fill(~mask, float("-inf")))
