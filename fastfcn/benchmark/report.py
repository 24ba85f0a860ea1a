"""Benchmark output: CSV and JSON files with the environment stamp, and the terminal table.

:func:`format_table` prints results beside the paper's FPS (Titan-Xp) and the paper's speed-up ratios
(ratios, not absolute FPS, are what compare across machines).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..utils.environment import cpu_model, environment
from ..utils.io import atomic_write_text
from .options import BenchOptions

__all__ = ["DEFAULT_RESULTS_DIR", "CSV_FIELDS", "write_csv", "write_json", "load_json", "gpu_result_files",
           "default_output_name", "fmt", "format_table"]

# relative to the current directory: the repository's committed results when run from its root
DEFAULT_RESULTS_DIR = Path("book") / "results"

CSV_FIELDS = ["name", "kind", "head", "backbone", "upsampling", "paper_backbone", "dilated_backbone",
               "output_stride", "mode", "batch", "size", "device", "dtype", "channels_last", "compile", "aux",
               "threads", "runs", "warmup", "params", "gmacs", "activation_bytes", "latency_median_s",
               "latency_q25_s", "latency_q75_s", "latency_min_s", "latency_max_s", "latency_mean_s", "fps",
               "fps_unsynchronised", "peak_mem_bytes", "peak_total_bytes", "baseline_bytes", "memory_method",
               "isolated", "paper_fps", "ratio", "paper_ratio", "official_cpu_latency_s", "wall_s"]


def write_csv(results: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One row per result, the columns of ``CSV_FIELDS`` (written atomically)."""
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in results:
        w.writerow(r)
    return atomic_write_text(path, buf.getvalue())


def write_json(path: str | Path, results: Sequence[dict[str, Any]], opts: BenchOptions,
               extra: dict[str, Any] | None = None) -> Path:
    """The results with the environment stamp and the options (written atomically)."""
    doc = {"environment": environment(opts.device), "options": asdict(opts), "results": list(results),
           **(extra or {})}
    return atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


def load_json(path: str | Path) -> dict[str, Any]:
    """A results file written by :func:`write_json`."""
    return json.loads(Path(path).read_text())


def gpu_result_files(results_dir: str | Path = DEFAULT_RESULTS_DIR) -> list[Path]:
    """``bench_gpu_*.json`` files in ``results_dir`` (written by ``fastfcn bench --device cuda``)."""
    return sorted(Path(results_dir).glob("bench_gpu_*.json"))


def default_output_name(device: str, env: dict[str, Any] | None = None) -> str:
    """``bench_<cpu|gpu>_<device name>``: the file stem of a run's results."""
    kind = "gpu" if device.startswith("cuda") else "cpu"
    name = (env or {}).get("device_name") or (torch.cuda.get_device_name(device) if kind == "gpu" else cpu_model())
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "unknown"
    return f"bench_{kind}_{slug}"


def fmt(value: Any, spec: str, missing: str = "-") -> str:
    """``format(value, spec)``, or ``missing`` for None."""
    return missing if value is None else format(value, spec)


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """A terminal table: ours beside the paper's FPS (Titan-Xp) and the paper's speed-up over dilated."""
    head = (f"{'model':<22} {'backbone':<10} {'OS':>2} {'mode':<9} {'bs':>2} {'Mparams':>7} {'GMACs':>6} "
            f"{'median ms':>9} {'IQR ms':>13} {'FPS':>6} {'peak MiB':>8} {'x dilated':>9} "
            f"{'paper FPS':>9} {'paper x':>7} {'offic. CPU s':>12}")
    lines = [head, "-" * len(head)]
    for r in results:
        iqr = f"{r['latency_q25_s'] * 1e3:.0f}-{r['latency_q75_s'] * 1e3:.0f}"
        mem = None if r.get("peak_mem_bytes") is None else r["peak_mem_bytes"] / 2**20
        lines.append(
            f"{r['name']:<22} {r['backbone'] or '':<10} {r['output_stride']:>2} {r['mode']:<9} {r['batch']:>2} "
            f"{r['params'] / 1e6:>7.1f} {r['gmacs']:>6.1f} {r['latency_median_s'] * 1e3:>9.0f} {iqr:>13} "
            f"{r['fps']:>6.2f} {fmt(mem, '8.0f'):>8} {fmt(r.get('ratio'), '9.2f'):>9} "
            f"{fmt(r.get('paper_fps'), '9.2f'):>9} {fmt(r.get('paper_ratio'), '7.2f'):>7} "
            f"{fmt(r.get('official_cpu_latency_s'), '12.2f'):>12}")
    lines.append("paper FPS: Titan-Xp, 512x512, mean of 100 runs (the paper's Table 2). x dilated: FPS / FPS of the "
                 "same head and backbone without upsampling (ours and the paper's). offic. CPU s: the official "
                 "implementation's latency on a 2-core CPU as measured by this project (not in the paper).")
    return "\n".join(lines)
