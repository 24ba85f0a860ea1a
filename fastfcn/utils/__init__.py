"""Primitives with one home each: atomic files, folder locks, the device, timing, the environment stamp, the thread count,
the allocator's settings (:mod:`.allocator`, applied by ``import fastfcn``).

Nothing here imports the rest of the package, so every layer (the network excepted, which needs
none of it) can use them.
"""

from .device import autocast, resolve_device, synchronize
from .environment import environment
from .io import atomic_save, atomic_write, atomic_write_text
from .threads import limited_threads, usable_cpus
from .timing import latency_stats, median_seconds, time_calls

__all__ = ["atomic_save", "atomic_write", "atomic_write_text", "autocast", "environment", "latency_stats",
           "limited_threads", "median_seconds", "resolve_device", "synchronize", "time_calls",
           "usable_cpus"]
