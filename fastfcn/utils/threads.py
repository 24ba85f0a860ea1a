"""The one way to change PyTorch's intra-op thread count for a while and put it back, and how many CPUs this
process may use."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["limited_threads", "usable_cpus"]


@contextmanager
def limited_threads(n: int | None = 1) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads, restoring the count afterwards (``None``: leave it as it is).

    Tensors as small as the book's toy examples spend more time starting and synchronising threads than
    computing, badly so on a busy machine: one thread is then many times faster. Benchmarks pass the
    count they were asked for.
    """
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one, else all of the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
