"""Workers and threads are sized by the cores this process may use, not the machine's count."""

from __future__ import annotations

import os

import pytest

from growdsl.run.cpus import usable_cpus
from growdsl.search.backends import threads_per_member
from growdsl.search.placement import Backend, concurrency

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity mask here")


@pytest.fixture
def one_core():
    """This process pinned to one of its cores for the test, the mask restored after."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    yield
    os.sched_setaffinity(0, before)


def test_usable_cpus_is_the_affinity_mask_not_the_machines_count(one_core):
    assert usable_cpus() == 1
    assert concurrency(Backend("local"), None) == 1  # a search's default workers
    assert threads_per_member(1) == 1
