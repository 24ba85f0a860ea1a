"""What evaluation reads and runs together: the next dataset items read in another thread while the network runs
(:func:`read_ahead`), and consecutive items of one image size grouped into batches (:func:`runs_of_one_size`)."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["READ_AHEAD", "read_ahead", "runs_of_one_size"]

READ_AHEAD = 2  # dataset items read ahead of the network by default
T = TypeVar("T")


def read_ahead(dataset: Any, indices: Sequence[int], ahead: int = READ_AHEAD) -> Iterator[tuple[int, Any]]:
    """``(i, dataset[i])`` for ``indices`` in order, the next ``ahead`` items read (decoded,
    transformed) in one other thread while the network runs on the caller's. One thread only: a dataset
    is never read by two threads at once. A failed read raises when its item is reached."""
    reader = ThreadPoolExecutor(1, thread_name_prefix="fastfcn-eval-read")
    queued: deque[tuple[int, Future]] = deque()
    following = iter(indices)
    try:
        while True:
            for i in itertools.islice(following, ahead + 1 - len(queued)):
                queued.append((i, reader.submit(dataset.__getitem__, i)))
            if not queued:
                return
            i, item = queued.popleft()
            yield i, item.result()
    finally:
        reader.shutdown(wait=True, cancel_futures=True)


def runs_of_one_size(items: Iterable[T], batch_size: int, size: Callable[[T], Hashable]) -> Iterator[list[T]]:
    """``items`` in order, in lists of up to ``batch_size`` consecutive items of one ``size(item)``: an item of
    another size closes the list before it. A ``batch_size`` below 1 is refused here, before any item is taken."""
    if batch_size < 1:
        raise ValueError(f"batch_size (images run through the network together) must be at least 1, got {batch_size}")
    return _runs(iter(items), batch_size, size)


def _runs(items: Iterator[T], batch_size: int, size: Callable[[T], Hashable]) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        if batch and (len(batch) == batch_size or size(item) != size(batch[0])):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch
