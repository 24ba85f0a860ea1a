"""The one timer: wall time of repeated calls, the device synchronised around each, and its statistics; and
named laps inside a function (:func:`lap`), recorded only where a caller asked for them (:func:`recording_laps`)."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .device import synchronize

__all__ = ["time_calls", "time_unsynchronised", "median_seconds", "marginal_seconds", "interleaved_seconds",
           "latency_stats", "lap", "recording_laps"]

# the laps being recorded in this thread (context), or None: a lap outside recording_laps costs a lookup
_LAPS: ContextVar[dict[str, list[float]] | None] = ContextVar("fastfcn_laps", default=None)


def time_calls(fn: Callable[[], object], runs: int = 3, warmup: int = 1, device: str = "cpu") -> list[float]:
    """Seconds of each of ``runs`` calls of ``fn()``, after ``warmup`` untimed ones.

    On CUDA the device is synchronised before and after every call, so that a time covers the
    kernels themselves and not only their launch.
    """
    if not isinstance(runs, int) or runs < 1 or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"need runs >= 1 and warmup >= 0, got runs={runs!r}, warmup={warmup!r}")
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(runs):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def time_unsynchronised(fn: Callable[[], object], runs: int, warmup: int = 0) -> float:
    """The official FPS script's method: the loop's wall time with the device never synchronised."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(runs):
        fn()
    return time.perf_counter() - start


def median_seconds(fn: Callable[[], object], runs: int = 3, warmup: int = 1, device: str = "cpu") -> float:
    """Median of :func:`time_calls`."""
    return statistics.median(time_calls(fn, runs, warmup, device))


def marginal_seconds(run_first: Callable[[int], object], count: int) -> float:
    """Seconds of one more item: ``(T(count) - T(1)) / (count - 1)``, where ``run_first(n)`` processes the first
    ``n`` items (a folder for ``fastfcn predict``, a dataset for ``evaluate``). What a run pays once (start-up,
    the first item's reading, the last one's writing, which nothing overlaps) falls out; ``count`` = 1 gives the
    whole cost of one item."""
    if count < 1:
        raise ValueError(f"need at least one item, got {count}")
    seconds = []
    for n in ([1, count] if count > 1 else [1]):
        start = time.perf_counter()
        run_first(n)
        seconds.append(time.perf_counter() - start)
    return (seconds[-1] - seconds[0]) / (count - 1) if count > 1 else seconds[0]


def interleaved_seconds(fn: Callable[[], object], measure: Callable[[], float], device: str = "cpu",
                        before: int = 1, after: int = 2) -> tuple[float, list[float]]:
    """``measure()``'s result with the seconds of ``before`` calls of ``fn`` just before it and ``after`` just
    after: a ratio of the two then compares figures of the same minutes, and the median of several calls is
    not one call's luck (one forward of ONNX Runtime took 0.84 or 0.93 s between processes on a 2-core EPYC)."""
    times = time_calls(fn, before, 0, device) if before else []
    result = measure()
    times += time_calls(fn, after, 0, device) if after else []
    return result, times


def _quantile(sorted_values: list[float], q: float) -> float:
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def latency_stats(times: list[float]) -> dict[str, float]:
    """Median, quartiles (linear interpolation), min, max and mean of ``times``, in seconds."""
    if not times:
        raise ValueError("no times to summarise")
    s = sorted(times)
    return {"latency_median_s": statistics.median(s), "latency_q25_s": _quantile(s, 0.25),
            "latency_q75_s": _quantile(s, 0.75), "latency_min_s": s[0], "latency_max_s": s[-1],
            "latency_mean_s": statistics.fmean(s)}


@contextmanager
def lap(name: str) -> Iterator[None]:
    """Time the block as the lap ``name`` where :func:`recording_laps` is active in this thread; elsewhere do
    nothing (the code that names its parts, e.g. :func:`fastfcn.inference.evaluate.predict_labels_later`, runs
    as ever)."""
    laps = _LAPS.get()
    if laps is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        laps.setdefault(name, []).append(time.perf_counter() - start)


@contextmanager
def recording_laps() -> Iterator[dict[str, list[float]]]:
    """Record the :func:`lap` blocks that run in this thread inside the ``with``: ``{name: [seconds, ...]}`` in
    the order each name first ran (a thread started inside does not record: its context is its own)."""
    laps: dict[str, list[float]] = {}
    token = _LAPS.set(laps)
    try:
        yield laps
    finally:
        _LAPS.reset(token)
