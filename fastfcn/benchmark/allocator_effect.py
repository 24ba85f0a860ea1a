"""What keeping freed memory (:mod:`fastfcn.utils.allocator`) saves: glibc's defaults against ours, in one run.

The allocator is set when a process imports ``fastfcn`` and cannot be put back, so each measurement runs in a
fresh interpreter, ``FASTFCN_SYSTEM_MALLOC`` set or not; the two settings alternate, round after round, so that
a drift of the machine's speed touches both alike. Each process builds the network (random weights, seed 0),
runs it twice untimed and then ``runs`` times timed, counting the minor page faults of each call (pages the
kernel had to hand out, zeroed, because the allocator had given them back). Two kinds of work:

* ``"forward"``: one inference forward of a Table 2 row at ``size`` x ``size``, batch 1, run as a fast-path
  variant (:func:`fastfcn.inference.fast_path.optimize`);
* ``"training"``: one training step (loss, backward, SGD update) of a Table 1 row at the quick profile's sizes
  (:func:`fastfcn.training.step_time.step_function`, fp32 in the channels-last layout).

``scripts/allocator_effect.py`` prints the table.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

from ..utils.allocator import OPT_OUT, keeps_freed_memory

__all__ = ["SETTINGS", "measure_here", "allocator_effect", "format_allocator_effect"]

SETTINGS = {"glibc defaults": "1", "freed memory kept": "0"}  # label -> FASTFCN_SYSTEM_MALLOC


def _work(kind: str, row: str, variant: str, size: int, substitute: str | None) -> Any:
    import torch

    torch.manual_seed(0)
    if kind == "forward":
        from ..inference.fast_path import optimize
        from .models import build_spec_model
        from .options import BenchOptions
        from .specs import parse_rows

        (spec,) = parse_rows(row, substitute=substitute)
        model = optimize(build_spec_model(spec, BenchOptions()).eval(), variant)
        x = torch.randn(1, 3, size, size)

        def forward() -> None:
            with torch.inference_mode():
                model(x)

        return forward
    if kind == "training":
        from ..data.scene import CLASSES
        from ..profiles import get_profile
        from ..training.step_time import step_function
        from ..training.table1 import table1_config

        head, _, upsampling = row.partition("+")
        config = table1_config(get_profile("quick"), head, upsampling, 0, device="cpu")
        return step_function(config, len(CLASSES), "fp32+channels_last")
    raise ValueError(f"unknown kind of work {kind!r}: forward or training")


def measure_here(kind: str, row: str, variant: str, size: int, runs: int, substitute: str | None = None
                 ) -> dict[str, Any]:
    """In this process: median seconds and minor page faults per call of the work, and the allocator setting."""
    work = _work(kind, row, variant, size, substitute)
    for _ in range(2):
        work()
    seconds, faults = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - start)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return {"seconds": statistics.median(seconds), "faults": statistics.median(faults), "kept": keeps_freed_memory()}


def _in_fresh_process(opt_out: str, **kwargs: Any) -> dict[str, Any]:
    code = ("import json, sys; from fastfcn.benchmark.allocator_effect import measure_here; "
            "print(json.dumps(measure_here(**json.loads(sys.argv[1]))))")
    env = {**os.environ, OPT_OUT: opt_out}
    done = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], env=env, capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"the measurement process failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def allocator_effect(kind: str = "forward", row: str = "encnet/resnet50/jpu", variant: str = "channels_last+fold_bn",
                     size: int = 512, runs: int = 5, rounds: int = 2, substitute: str | None = None) -> dict[str, Any]:
    """Both settings measured ``rounds`` times each, alternating: ``{"settings": {label: {"seconds": median of
    the rounds' medians, "faults": ..., "rounds": [...]}}, "speedup": defaults / kept, ...}``. ``row``: a Table 2
    row (``head/backbone/upsampling``) for a forward, ``head+upsampling`` of Table 1 for a training step;
    ``substitute``: a small backbone that stands in for the row's (e.g. ``resnet18``, for a quick check)."""
    if kind not in ("forward", "training") or runs < 1 or rounds < 1:
        raise ValueError(f"need kind forward or training, runs >= 1 and rounds >= 1; got {kind!r}, {runs}, {rounds}")
    found: dict[str, list[dict[str, Any]]] = {label: [] for label in SETTINGS}
    for _ in range(rounds):
        for label, opt_out in SETTINGS.items():
            found[label].append(_in_fresh_process(opt_out, kind=kind, row=row, variant=variant, size=size, runs=runs,
                                                  substitute=substitute))
    settings = {label: {"seconds": statistics.median(r["seconds"] for r in rs),
                        "faults": statistics.median(r["faults"] for r in rs), "rounds": rs}
                for label, rs in found.items()}
    defaults, kept = (settings[label]["seconds"] for label in SETTINGS)
    return {"kind": kind, "row": row, "variant": variant if kind == "forward" else "fp32+channels_last",
            "size": size, "runs": runs, "rounds": rounds, "settings": settings, "speedup": defaults / kept}


def format_allocator_effect(result: dict[str, Any]) -> str:
    """The result as a terminal table."""
    what = (f"one forward of {result['row']} at {result['size']}x{result['size']}, {result['variant']}"
            if result["kind"] == "forward" else f"one quick-profile training step of {result['row']}, fp32 channels-last")
    lines = [f"{what}; median of {result['runs']} calls per process, {result['rounds']} processes per setting",
             f"{'setting':<18} {'ms per call':>11} {'page faults':>11}"]
    for label, s in result["settings"].items():
        lines.append(f"{label:<18} {1e3 * s['seconds']:>11.1f} {s['faults']:>11.0f}")
    lines.append(f"speed-up of keeping freed memory: {result['speedup']:.2f}x")
    return "\n".join(lines)
