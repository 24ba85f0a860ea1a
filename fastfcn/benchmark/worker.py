"""Run one measurement in a fresh process and bring its result back.

A fresh process is what makes the CPU peak-memory counters mean "this measurement" (see
:mod:`fastfcn.benchmark.memory`), and it keeps one measurement's compiled kernels, allocator
pages and thread settings from leaking into the next. The processes are forked from a server
that has imported torch and the benchmark once (``multiprocessing``'s *forkserver*): a new
interpreter would spend about 3 s of a 2-core CPU importing them again for every measurement.
The server itself never computes, so no thread pool is forked half-initialised; each
measurement's process ends when the measurement does. The task names its function as
``"module:function"``; its keyword arguments and its result must be picklable.
"""

from __future__ import annotations

import importlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

__all__ = ["run_in_subprocess"]

# imported once by the fork server, then shared by every measurement's process
PRELOAD = ["torch", "fastfcn.benchmark.measure"]
_context: Any = None


def _forkserver() -> Any:
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _context = ctx
    return _context


def _run(target: str, kwargs: dict[str, Any]) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(**kwargs)


def run_in_subprocess(target: str, kwargs: dict[str, Any], what: str = "", timeout: float | None = None) -> Any:
    """``target(**kwargs)`` in a process of its own, forked from the preloaded server; returns its result.

    An exception of the measurement is raised here as it was raised there; a process that dies (killed,
    out of memory) raises :class:`RuntimeError` naming the measurement.
    """
    with ProcessPoolExecutor(max_workers=1, mp_context=_forkserver(), max_tasks_per_child=1) as pool:
        try:
            return pool.submit(_run, target, kwargs).result(timeout=timeout)
        except BrokenProcessPool as exc:
            raise RuntimeError(f"the benchmark process for {what or target} died before it finished (killed, or "
                               f"out of memory)") from exc
