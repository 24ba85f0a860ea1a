"""Peak memory of a measurement, and the training-memory fit.

CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus what was allocated
before the measurement (weights, input). CPU: each measurement runs in a fresh Python process (see
:mod:`fastfcn.benchmark.worker`); it releases the allocator's free pages (``malloc_trim``), resets the
kernel's peak-RSS counter (``/proc/self/clear_refs`` = 5), reads ``VmRSS`` as the baseline, and after
warm-up and runs reads ``VmHWM``: the peak resident memory the measurement added (activations, workspaces
and, for training, gradients and optimizer state) is ``VmHWM - baseline``. ``peak_total_bytes`` is the
process's whole peak (interpreter, libraries, weights included). In-process measurements use the same
counters and are flagged; they can under-count when earlier measurements left pages the allocator reuses.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import sys
from pathlib import Path
from typing import Any

import torch

from ..complexity import saved_for_backward_bytes
from .models import build_spec_model
from .options import BenchOptions
from .specs import ModelSpec, spec_fields

__all__ = ["TITAN_XP_BYTES", "MemoryProbe", "training_memory_fit"]

TITAN_XP_BYTES = 12 * 2**30  # the paper's GPU: 12 GB


def _proc_status_bytes(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _malloc_trim() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class MemoryProbe:
    """Peak memory a measurement adds on top of what existed when it started (see the module doc)."""

    def __init__(self, device: str, isolated: bool) -> None:
        self.device, self.isolated = device, isolated

    def start(self) -> None:
        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline = torch.cuda.memory_allocated(self.device)
            self.method = "cuda max_memory_allocated - memory_allocated before"
            return
        _malloc_trim()
        self.reset = _reset_peak_rss()
        self.baseline = _proc_status_bytes("VmRSS")
        where = "fresh process" if self.isolated else "in-process (may under-count)"
        self.method = (f"VmHWM after clear_refs reset - VmRSS before, {where}" if self.reset
                       else f"ru_maxrss (lifetime peak) - VmRSS before, {where}")

    def stop(self) -> dict[str, Any]:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self.reset:
            peak = _proc_status_bytes("VmHWM")
        else:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        extra = None if peak is None or self.baseline is None else max(0, peak - self.baseline)
        return {"peak_mem_bytes": extra, "peak_total_bytes": peak, "baseline_bytes": self.baseline,
                "memory_method": self.method}


def training_memory_fit(spec: ModelSpec, opts: BenchOptions, batches: tuple[int, int] = (1, 2),
                        budget_bytes: int = TITAN_XP_BYTES) -> dict[str, Any]:
    """Bytes autograd saves for backward at two batch sizes, the linear fit, and the largest batch
    whose saved tensors plus weights, gradients and momentum (3 x fp32 parameters) fit ``budget_bytes``.
    Counted on the ``meta`` device: the same bytes as a real forward, at no cost.

    An upper bound: backward's temporaries, workspaces and the CUDA context are not counted.
    """
    opts = opts.validated()
    with torch.device("meta"):  # the saved bytes depend on shapes only: counted without data or arithmetic
        model = build_spec_model(spec, opts)
    saved = {}
    for b in batches:
        x = torch.empty(b, 3, opts.size, opts.size, device="meta")
        try:
            saved[b] = saved_for_backward_bytes(model, x)
        except ValueError as exc:
            if "more than 1 value per channel" not in str(exc):
                raise
            raise ValueError(f"{spec.name} cannot run in training mode at batch {b} and {opts.size}x{opts.size}: "
                             "BatchNorm needs more than one value per channel (a pooled or 1x1 feature map); "
                             "use larger batches, e.g. batches=(2, 3), or a larger input") from exc
        del x
    (b1, s1), (b2, s2) = sorted(saved.items())
    per_image = (s2 - s1) / (b2 - b1)
    fixed = s1 - per_image * b1
    params = sum(p.numel() for p in model.parameters())
    state = 3 * 4 * params  # fp32 weights, gradients, SGD momentum
    # the batch-independent part of the saved tensors is mostly the weights themselves (convolutions
    # save their weight), already in ``state``
    other_fixed = max(fixed - 4 * params, 0.0)
    room = budget_bytes - state - other_fixed
    max_batch = max(math.floor(room / per_image), 0) if per_image > 0 else None
    return {**spec_fields(spec), "size": opts.size, "saved_bytes": saved, "per_image_bytes": per_image,
            "fixed_bytes": fixed, "other_fixed_bytes": other_fixed, "params": params, "state_bytes": state,
            "budget_bytes": budget_bytes, "max_batch": max_batch}
