"""Running out of memory as a user's error: a net, batch or data set too large for the machine is
reported with exit code 2 (docs/cli.md), never as the allocator's traceback.

`check` refuses a net past `max_params` (growdsl/run/config.py) before anything is allocated;
this catches what gets past it (a bound raised past the machine's memory, a batch whose
activations do not fit). torch reports a failed CPU allocation as a RuntimeError naming the
allocator, a failed GPU one as `torch.OutOfMemoryError`; Python's own as MemoryError.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from growdsl.errors import RunError
from growdsl.lazy import torch

_ALLOCATOR = re.compile(r"can't allocate memory|not enough memory|out of memory", re.IGNORECASE)


@contextmanager
def allocation_failures_refused() -> Iterator[None]:
    """Turn an allocation failure inside the block into a RunError saying what to change."""
    try:
        yield
    except (MemoryError, RuntimeError) as e:
        if not (isinstance(e, (MemoryError, torch.OutOfMemoryError)) or _ALLOCATOR.search(str(e))):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RunError(
            f"out of memory: {first}; make the model or the batch smaller, or run where there is more "
            "memory (--device)"
        ) from None
