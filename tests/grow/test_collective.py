"""growdsl/grow/collective.py, the statistics protocol of growth on several processes: every call
is the identity in one process, and on 2 gloo ranks (started by torch's launcher) each does what
its table says: shares cover the batch in order, sums and gathers equal one process's
statistics, rank 0's decision reaches every rank (one the wire cannot carry stops them all),
and a checksum mismatch names the tensor on every rank."""

from __future__ import annotations

import subprocess
from pathlib import Path

import torch

from growdsl.grow import collective
from growdsl.run.distributed import launcher_command

ROOT = Path(__file__).resolve().parents[2]


def test_alone_every_call_is_the_identity():
    t = torch.arange(6.0).reshape(3, 2)
    assert not collective.active() and collective.ranks() == 1 and collective.rank() == 0
    assert collective.share(5) == (slice(0, 5), 1.0)
    x, y, weight = collective.my_rows(t, t[:, 0])
    assert x is t and weight == 1.0
    assert collective.part_of_mean(t, 1.0) is t
    assert collective.all_sum(t) is t and collective.gather_rows(t) is t and collective.from_rank0(t) is t
    assert collective.decided({"a": 1}) == {"a": 1}
    collective.check_same({"w": t}, "now")  # nothing to compare with


def test_checksums_see_a_swap_of_two_entries():
    a = torch.tensor([1.0, 2.0, 3.0])
    b = torch.tensor([2.0, 1.0, 3.0])
    assert not torch.equal(collective.checksums({"w": a}), collective.checksums({"w": b}))
    assert torch.equal(collective.checksums({"w": a}), collective.checksums({"w": a.clone()}))


RANKS = """
import os
from pathlib import Path

import torch
from growdsl.grow import collective, wire
from growdsl.lazy import F

torch.distributed.init_process_group("gloo")
r = collective.rank()
assert collective.ranks() == 2
# shares of 5 rows: 3 then 2, in order, weights summing to 1
rows, weight = collective.share(5)
assert (rows, weight) == ((slice(0, 3), 0.6) if r == 0 else (slice(3, 5), 0.4)), (rows, weight)
# a mean loss in parts, its gradient summed: the whole batch's gradient
torch.manual_seed(0)
x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 1, 0])
w = torch.randn(4, 3, requires_grad=True)
F.cross_entropy(x @ w, y).backward()
whole = w.grad.clone()
w.grad = None
xb, yb, weight = collective.my_rows(x, y)
collective.part_of_mean(F.cross_entropy(xb @ w, yb), weight).backward()
collective.all_sum_grads([w])
assert torch.allclose(w.grad, whole, atol=1e-6), (w.grad, whole)
# rows gathered in rank order, uneven counts
got = collective.gather_rows(torch.full((r + 1, 2), float(r)))
assert torch.equal(got, torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])), got
# rank 0's decision everywhere; one the wire cannot carry stops every rank
got = collective.decided({"rank": r, "t": torch.tensor([r]), "path": Path("runs/x")})
assert got["rank"] == 0 and torch.equal(got["t"], torch.tensor([0])) and got["path"] == Path("runs/x"), got
try:
    collective.decided((lambda: 0) if r == 0 else None)
    raise SystemExit("a function was sent")
except wire.NotSendable as e:
    assert "function" in str(e), str(e)
assert torch.equal(collective.from_rank0(torch.tensor([float(r)])), torch.tensor([0.0]))
# a checksum mismatch stops every rank, naming the tensor
same = {"a": torch.ones(3), "b": torch.ones(2)}
collective.check_same(same, "after the test step")
other = {"a": torch.ones(3), "b": torch.ones(2) * (1 + r)}
try:
    collective.check_same(other, "after the test step")
    raise SystemExit("no mismatch seen")
except collective.RankMismatch as e:
    assert "tensor 'b' on rank(s) 1" in str(e) and "after the test step" in str(e), str(e)
with collective.counted() as moved:
    collective.all_sum(torch.zeros(10))
assert moved.bytes == 40 and moved.calls == 1
torch.distributed.destroy_process_group()
os.write(1, f"rank {r} ok\\n".encode())  # one write: the two ranks' lines never interleave
"""


def test_on_two_gloo_ranks_each_call_does_what_its_table_says(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(RANKS)
    command = launcher_command(2, str(script))
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(" ok") == 2
