"""Keep the memory a forward frees for the next forward: glibc malloc settings, the one home for them.

A forward of these networks allocates and frees activations of tens of megabytes. With glibc's default
settings, a freed block that large is handed back to the operating system (``munmap``, or trimming the top
of the heap), and the next forward's allocation of the same size gets fresh pages, each zeroed by the kernel
on its first touch: a page fault per 4 KiB. On a 2-core AMD EPYC (Zen 4, AVX-512), EncNet+JPU, ResNet-50s,
512x512, channels_last+fold_bn: 27,000-74,000 minor page faults per forward by default, none with the
settings below, and 1.04-1.08x faster (2026-12-04, ``scripts/allocator_effect.py``, which measures both in
one run for any row). ONNX Runtime plans its memory in an arena of its own and never pays this. A training
step of the book's quick profile (128 px) faults a few thousand times either way: no measurable change.

:func:`keep_freed_memory` raises glibc's two thresholds so that freed blocks stay in the process and are
reused: blocks below :data:`MMAP_THRESHOLD` come from the heap (glibc's default moves up to 32 MiB), and the
heap's top is returned to the system only when more than :data:`TRIM_THRESHOLD` is free there. Blocks above
the threshold (a whole photograph's probabilities) are still mapped and unmapped one by one: kept in the
heap, they fragmented it and raised the peak of ``fastfcn predict`` on an 8000 x 8000 image from 1045 MiB
above its start to 1110-1160 (with 512 MiB / 1 GiB thresholds); with these 1062-1081. It changes no number
that is computed. ``import fastfcn`` applies it, so that every measurement of a process runs with the same
allocator; set ``FASTFCN_SYSTEM_MALLOC=1`` before the import to keep glibc's defaults. Elsewhere than glibc
it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "OPT_OUT", "keep_freed_memory", "keeps_freed_memory"]

MMAP_THRESHOLD = 64 << 20  # bytes: blocks below this come from the heap and are reused after being freed
TRIM_THRESHOLD = 64 << 20  # bytes of free memory at the heap's top before any is returned to the system
OPT_OUT = "FASTFCN_SYSTEM_MALLOC"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
_applied = False


def keep_freed_memory() -> bool:
    """Set the two thresholds (once per process); ``True`` when they are in force. ``False`` where the C
    library is not glibc, or where ``FASTFCN_SYSTEM_MALLOC`` is set to anything but ``0`` or empty."""
    global _applied
    if _applied:
        return True
    if os.environ.get(OPT_OUT, "") not in ("", "0") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # mallopt returns 1 on success; reported in force only when both settings took
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied


def keeps_freed_memory() -> bool:
    """Whether :func:`keep_freed_memory` is in force in this process."""
    return _applied
