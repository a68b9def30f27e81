"""A plugin for the worker-death tests (tests/search/test_worker_death.py): the op `beacon` passes
its input through and, the first time it runs in a process, writes that process's id as a file
into the folder named by $GROWDSL_BEACON. A member whose model holds a beacon so says, from inside
the worker process that trains it, that it is training there now: the test kills exactly that
process, with no guess at when the job has started."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from growdsl.plugins import register_op

_lit = False  # whether this process has written its file


class Beacon(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        global _lit
        if not _lit and self.training:
            _lit = True
            folder = Path(os.environ["GROWDSL_BEACON"])
            (folder / f".{os.getpid()}.tmp").write_text("")
            (folder / f".{os.getpid()}.tmp").rename(folder / str(os.getpid()))  # whole or not at all
        return x


register_op("beacon", lambda args, shape: Beacon(), transparent=True, doc="says where it trains (tests)")
