"""How many CPU cores this process may run on: what worker counts and torch threads are sized by.

`os.cpu_count()` counts the machine's cores, not the ones this process is allowed (a container's
cpuset, `taskset`, a batch scheduler's allocation). Sized by it, a restricted process starts more
busy-waiting OpenMP threads than it has cores, and members ran many times slower for it. The
affinity mask is what Linux enforces; a CPU quota without a cpuset (cgroup `cpu.max`) is not
visible here, and elsewhere than Linux the machine's count is all there is.
"""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """The cores this process may be scheduled on (at least 1)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity mask on this platform (macOS, Windows)
        return os.cpu_count() or 1
