"""Items worked on in three stages around a network, in order: what ``fastfcn predict`` runs on a folder.

While the network runs one item on the caller's thread (``run``; torch and ONNX Runtime already use every
core there), a reader thread prepares the next ones (``read``: decoding an image file) and one writer
thread finishes the previous ones (a :class:`Deferred` returned by ``run``: colouring, blending, PNG
encoding and writing). Outcomes are handed to ``publish`` on the caller's thread in the items' order,
whatever order the threads finish in, so messages and results read as if the items had been worked on one
after another. Memory stays bounded: at most :data:`READ_AHEAD` items are read ahead and
:data:`WRITES_PENDING` wait for the writer, and beyond the first no more than :data:`HELD_BYTES` (as
``size`` counts them) are held at once, so that large photos are worked on one at a time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

__all__ = ["READERS", "READ_AHEAD", "WRITES_PENDING", "HELD_BYTES", "Deferred", "run_in_order"]

# one reader: decoding a photo takes a small fraction of a forward, and Pillow's pixel limit is a global
# that fastfcn.data.images.read_rgb switches off and on around each read: two readers would race on it
READERS = 1
READ_AHEAD = 2
WRITES_PENDING = 2
HELD_BYTES = 256 * 2**20  # e.g. decoded pixels beyond the item the network runs (about 85 M RGB pixels)

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


class Deferred(Generic[Outcome]):
    """What ``run`` leaves for the writer thread: ``finish()`` gives the item's outcome."""

    def __init__(self, finish: Callable[[], Outcome]) -> None:
        self.finish = finish


def _finished(outcome: Any) -> Future:
    future: Future = Future()
    future.set_result(outcome)
    return future


class _Stages:
    """The queues of :func:`run_in_order`: reads in flight and outcomes not yet published, with the bytes
    they hold."""

    def __init__(self, items: Sequence[Any], read: Callable[[Any], Any], size: Callable[[Any], int]) -> None:
        self.items, self.read, self.size = items, read, size
        self.next = 0  # the first item not yet handed to a reader
        self.held = 0  # bytes of the items read or being read and not yet published
        self.reads: deque[tuple[Any, int, Future]] = deque()
        self.pending: deque[tuple[int, Future]] = deque()
        self.readers = ThreadPoolExecutor(READERS, thread_name_prefix="fastfcn-read")
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="fastfcn-write")  # one: writes keep their order

    def read_ahead(self) -> None:
        while len(self.reads) <= READ_AHEAD and self.next < len(self.items):
            item = self.items[self.next]
            size = self.size(item)
            if (self.reads or self.pending) and self.held + size > HELD_BYTES:
                return
            self.reads.append((item, size, self.readers.submit(self.read, item)))
            self.held += size
            self.next += 1

    def publish(self, publish: Callable[[Any], None], everything: bool = False) -> None:
        """Publish the finished outcomes at the head; wait for the oldest while too much is held."""
        while self.pending and (everything or self.pending[0][1].done() or len(self.pending) > WRITES_PENDING
                                or self.held > HELD_BYTES):
            size, future = self.pending.popleft()
            publish(future.result())
            self.held -= size

    def close(self) -> None:
        self.readers.shutdown(wait=True, cancel_futures=True)
        self.writer.shutdown(wait=True, cancel_futures=True)


def run_in_order(items: Sequence[Item], read: Callable[[Item], Any], run: Callable[[Item, Any], Any],
                 publish: Callable[[Any], None], size: Callable[[Item], int] = lambda item: 0) -> None:
    """``publish(outcome)`` for every item in order, where the outcome is ``run(item, read(item))``, or
    ``finish()`` of the :class:`Deferred` that ``run`` returned (see the module docstring). An exception
    that a stage does not handle is raised here, and the work queued after it is cancelled."""
    stages = _Stages(items, read, size)
    try:
        for _ in items:
            stages.read_ahead()
            if not stages.reads:  # everything held waits for the writer: make room
                stages.publish(publish, everything=True)
                stages.read_ahead()
            item, held, data = stages.reads.popleft()
            data = data.result()
            stages.read_ahead()  # the next items are read while this one runs
            outcome = run(item, data)
            del data
            future = stages.writer.submit(outcome.finish) if isinstance(outcome, Deferred) else _finished(outcome)
            stages.pending.append((held, future))
            del outcome
            stages.publish(publish)
        stages.publish(publish, everything=True)
    finally:
        stages.close()
