"""Which exact torch path is fastest on this machine: measured, recorded, and what the ``exact`` preset runs.

``exact`` runs the model's own function in fp32 with BatchNorm folded into the convolutions (the same labels as
fp32 eager, to float rounding). Whether the channels-last memory layout on top of that helps depends on the CPU
and its oneDNN kernels: on a 2-core AVX2 EPYC (Zen 1) channels_last+fold_bn ran at 0.88x fp32 eager and fold_bn
alone at 1.03x (chapter 6, 2026-12-03) until JPU's depthwise convolution dilated by 8 ran split into sub-images
(:mod:`fastfcn.inference.split_depthwise`): then 1.34x against 1.13x (``fastfcn bench --fast-path``, the same
day), while ONNX Runtime ran at 1.44x. On a 2-core AVX-512 EPYC (Zen 4), with freed memory kept for reuse
(:mod:`fastfcn.utils.allocator`), one run on 2026-12-04: fold_bn 1.05x, channels_last+fold_bn 1.22x (798 ms),
ONNX Runtime 1.33x (731 ms), ``compile+channels_last+fold_bn`` 1.39x (701 ms). On a 2-core AVX-512-BF16 Xeon (AMX),
2026-12-05: channels_last+fold_bn 448 ms against fold_bn 603 ms, ONNX Runtime 371 ms, compiled 400 ms (chapter 6);
interleaved over ten rounds in one process, eager 449, compiled 369, ONNX Runtime 377 ms. So the choice is a
measurement, not a rule: :func:`fastfcn.benchmark.variants.fast_path` (``fastfcn bench --fast-path``, chapter 6) times both candidates
with the other variants, interleaved, and records the faster here, keyed by the machine (CPU model, the
instruction set PyTorch dispatches to, torch version, threads). ``exact`` then runs the recorded
one on that machine; without a record it runs :data:`EXACT_DEFAULT`. GPUs are not recorded (channels-last is
right there). The record lives in the package's cache folder (:func:`fastfcn.utils.cache.cache_dir`).

The same measurement says whether ``torch.compile`` pays off here (:mod:`fastfcn.benchmark.compile_cost`): the
compile time once, and what each compiled call saves against the fastest eager exact path, recorded per
machine and per network (head, backbone, upsampling) by :func:`record_compile`. :func:`compile_pays_off` reads
it: ``fastfcn eval`` and ``fastfcn predict`` on the torch path in ``slide`` mode, where every forward is one
crop size, compile by themselves when the run has at least as many forwards as compiling needs to pay for
itself. Without a record they do not compile: measured, not assumed. On the 2-core AVX2 EPYC (2026-12-05) the
record said 9.6 s once and 849 against 941 ms per 512 px call, so 120 crops of 480; ``fastfcn eval --runtime
torch`` on 60 procedural scenes of 512 px (240 crops) then took 195 s compiled, compilation included, against
201 s with ``--no-compile`` and 181 s in ONNX Runtime (832 ms per call in the same record's run).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["EXACT_DEFAULT", "EXACT_CANDIDATES", "RECORD_NAME", "COMPILE_RECORD_NAME", "machine_key", "recorded_exact",
           "record_exact", "network_key", "record_compile", "recorded_compile", "calls_to_pay_off", "compile_pays_off"]

EXACT_DEFAULT = "channels_last+fold_bn"
# both compute the folded fp32 network; they differ in memory layout only
EXACT_CANDIDATES = ("fold_bn", "channels_last+fold_bn")
RECORD_NAME = "exact-path.json"
COMPILE_RECORD_NAME = "compile-payoff.json"


def machine_key(threads: int | None = None) -> str:
    """What decides which layout is faster: the CPU model, the ISA PyTorch's kernels use, torch, the threads
    (``threads``: those of the measurement; default this process's)."""
    import torch

    from ..utils.environment import cpu_model

    threads = torch.get_num_threads() if threads is None else threads
    return f"{cpu_model()} | {torch.backends.cpu.get_cpu_capability()} | torch {torch.__version__} | {threads} threads"


def _record_file(name: str = RECORD_NAME) -> Path:
    from ..utils.cache import cache_dir

    return cache_dir() / name


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


def network_key(config: Mapping[str, Any]) -> str:
    """What compiling's cost and gain depend on besides the machine: the network's head, backbone and
    upsampling (a model's ``config`` or a benchmark spec's fields)."""
    return f"{config.get('head')}/{config.get('backbone')}/{config.get('upsampling')}"


def record_compile(network: str, size: int, compile_s: float, compiled_s: float, eager_s: float, eager_variant: str,
                   device: str, source: str, threads: int | None = None) -> bool:
    """Record what compiling ``network`` cost (``compile_s``, once) and each call of ``size`` x ``size`` after
    it (``compiled_s``) against the fastest eager exact variant (``eager_s``), measured in one run; returns
    whether it was recorded (not on a GPU)."""
    if not str(device).startswith("cpu"):
        return False
    from datetime import UTC, datetime

    from ..utils.io import atomic_write_text

    path = _record_file(COMPILE_RECORD_NAME)
    doc = _read(path)
    machine = doc.get(machine_key(threads))
    machine = machine if isinstance(machine, dict) else {}
    machine[network] = {"size": int(size), "compile_s": float(compile_s), "compiled_s": float(compiled_s),
                        "eager_s": float(eager_s), "eager_variant": eager_variant, "source": source,
                        "measured": datetime.now(UTC).isoformat(timespec="seconds")}
    doc[machine_key(threads)] = machine
    atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return True


def recorded_compile(network: str, device: str = "cpu") -> dict[str, Any] | None:
    """The compile measurement of ``network`` on this machine (:func:`record_compile`'s fields), or ``None``."""
    if not str(device).startswith("cpu"):
        return None
    machine = _read(_record_file(COMPILE_RECORD_NAME)).get(machine_key())
    entry = machine.get(network) if isinstance(machine, dict) else None
    fields = ("size", "compile_s", "compiled_s", "eager_s")
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), (int, float)) for k in fields):
        return None  # damaged: as if nothing was measured
    return entry


def calls_to_pay_off(compile_s: float, compiled_s: float, eager_s: float, measured_size: int,
                     size: int) -> int | None:
    """After how many calls at ``size`` x ``size`` compiling has paid for itself, from a measurement at
    ``measured_size`` (the saving per call scaled by the pixels, the compile time as measured); ``None``:
    never (the compiled call is not faster)."""
    saving = (eager_s - compiled_s) * (size / measured_size) ** 2
    if saving <= 0:
        return None
    return max(1, math.ceil(round(compile_s / saving, 6)))  # 10 / (0.9 - 0.8) is 100, not 101


def compile_pays_off(config: Mapping[str, Any], forwards: int, size: int, device: str = "cpu") -> str | None:
    """Why compiling pays off for a run of ``forwards`` calls at ``size`` x ``size`` of the network of
    ``config`` on this machine (one line), or ``None`` when it does not or nothing was measured. The recorded
    saving per call is scaled to ``size`` by the pixels (the compile time is taken as it was measured)."""
    entry = recorded_compile(network_key(config), device)
    if entry is None or forwards < 1:
        return None
    calls = calls_to_pay_off(entry["compile_s"], entry["compiled_s"], entry["eager_s"], entry["size"], size)
    if calls is None or forwards < calls:
        return None
    return (f"compiling the network: measured on this machine ({entry['source']}), compiling takes "
            f"{entry['compile_s']:.0f} s once and pays for itself after {calls} forwards of {size} px; this run has "
            f"about {forwards} (--no-compile: do not compile)")
