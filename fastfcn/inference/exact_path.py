"""Which exact torch path is fastest on this machine: measured, recorded, and what the ``exact`` preset runs.

``exact`` runs the model's own function in fp32 with BatchNorm folded into the convolutions (the same labels as
fp32 eager, to float rounding). Whether the channels-last memory layout on top of that helps depends on the CPU
and its oneDNN kernels: on a 2-core AVX2 EPYC (Zen 1) channels_last+fold_bn ran at 0.88x fp32 eager and fold_bn
alone at 1.03x (chapter 6, 2026-12-03) until JPU's depthwise convolution dilated by 8 ran split into sub-images
(:mod:`fastfcn.inference.split_depthwise`): then 1.34x against 1.13x (``fastfcn bench --fast-path``, the same
day), while ONNX Runtime ran at 1.44x. On a 2-core AVX-512 EPYC (Zen 4), with freed memory kept for reuse
(:mod:`fastfcn.utils.allocator`), one run on 2026-12-04: fold_bn 1.05x, channels_last+fold_bn 1.22x (798 ms),
ONNX Runtime 1.33x (731 ms), ``compile+channels_last+fold_bn`` 1.39x (701 ms). So the choice is a measurement, not a
rule: :func:`fastfcn.benchmark.variants.fast_path` (``fastfcn bench --fast-path``, chapter 6) times both candidates
with the other variants, interleaved, and records the faster here, keyed by the machine (CPU model, the
instruction set PyTorch dispatches to, torch version, threads). ``exact`` then runs the recorded
one on that machine; without a record it runs :data:`EXACT_DEFAULT`. GPUs are not recorded (channels-last is
right there). The record lives in the package's cache folder (:func:`fastfcn.utils.cache.cache_dir`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["EXACT_DEFAULT", "EXACT_CANDIDATES", "RECORD_NAME", "machine_key", "recorded_exact", "record_exact"]

EXACT_DEFAULT = "channels_last+fold_bn"
# both compute the folded fp32 network; they differ in memory layout only
EXACT_CANDIDATES = ("fold_bn", "channels_last+fold_bn")
RECORD_NAME = "exact-path.json"


def machine_key(threads: int | None = None) -> str:
    """What decides which layout is faster: the CPU model, the ISA PyTorch's kernels use, torch, the threads
    (``threads``: those of the measurement; default this process's)."""
    import torch

    from ..utils.environment import cpu_model

    threads = torch.get_num_threads() if threads is None else threads
    return f"{cpu_model()} | {torch.backends.cpu.get_cpu_capability()} | torch {torch.__version__} | {threads} threads"


def _record_file() -> Path:
    from ..utils.cache import cache_dir

    return cache_dir() / RECORD_NAME


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):  # absent or damaged: nothing recorded (a later measurement rewrites it)
        return {}
    return doc if isinstance(doc, dict) else {}


def recorded_exact(device: str = "cpu") -> str | None:
    """The exact variant measured fastest on this machine, or ``None`` when none was recorded (or on a GPU)."""
    if not str(device).startswith("cpu"):
        return None
    entry = _read(_record_file()).get(machine_key())
    variant = entry.get("variant") if isinstance(entry, dict) else None
    return variant if variant in EXACT_CANDIDATES else None


def record_exact(seconds: Mapping[str, float], device: str, source: str, threads: int | None = None) -> str | None:
    """Record the faster of :data:`EXACT_CANDIDATES` from their median seconds, measured together in one run
    on ``device`` with ``threads``; returns the variant recorded, or ``None`` (a GPU, or a candidate not
    measured)."""
    if not str(device).startswith("cpu") or not all(v in seconds for v in EXACT_CANDIDATES):
        return None
    from datetime import UTC, datetime

    from ..utils.io import atomic_write_text

    best = min(EXACT_CANDIDATES, key=lambda v: seconds[v])
    path = _record_file()
    doc = _read(path)
    doc[machine_key(threads)] = {"variant": best, "seconds": {v: float(seconds[v]) for v in EXACT_CANDIDATES},
                          "source": source, "measured": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return best
