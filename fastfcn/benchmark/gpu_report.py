"""The GPU run of ``scripts/gpu_run.sh``: the device record it writes, and chapter 6's table of its figures.

A GPU run (``make gpu-run``) writes into its output folder:

* ``device.json`` -- :func:`device_record`: the GPU's name, driver and memory (``nvidia-smi``), the torch,
  CUDA and cuDNN versions, the CPU, the date and the commit;
* ``bench.json`` -- ``fastfcn bench`` JSON, fp32: every Table 2 row and torchvision's models at 512x512,
  batch 1, timed synchronised (the host's clock, the device synchronised around each call), with CUDA
  events (the GPU's clock) and unsynchronised, the way the official FPS script times;
* ``bench_amp.json`` -- the same rows with bf16 autocast and channels_last;
* ``bench_fast_path.json`` -- the fast path's variants of EncNet+JPU (ResNet-50).

Copied into ``book/results/gpu/``, chapter 6 reads them with :func:`load_gpu_run` and prints
:func:`format_gpu_table` and :func:`gpu_summary`; :func:`gpu_figures` are the numbers it records.
``python -m fastfcn.benchmark.gpu_report device OUT.json --device cuda`` writes ``device.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .report import NAN, Figures, fmt

__all__ = ["GPU_DIR", "FILES", "NO_GPU_RUN", "GpuRun", "device_record", "write_device_json", "load_gpu_run",
           "describe_gpu_run", "gpu_rows", "format_gpu_table", "gpu_figures", "gpu_summary", "main"]

GPU_DIR = "gpu"  # book/results/gpu: where a GPU run's files are committed
FILES = {"device": "device.json", "fp32": "bench.json", "amp": "bench_amp.json", "fast_path": "bench_fast_path.json"}
NO_GPU_RUN = ("No GPU run has been committed yet: `make gpu-run` on a machine with a GPU writes one "
              "(scripts/gpu_run.sh); copy its output folder into book/results/gpu/ and this section shows it.")


def _nvidia_smi(index: int = 0) -> dict[str, Any]:
    """Name, driver and memory of GPU ``index`` as ``nvidia-smi`` reports them ({} without it)."""
    if shutil.which("nvidia-smi") is None:
        return {}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=30,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if len(lines) <= index:
        return {}
    name, driver, memory = (p.strip() for p in (lines[index].split(",") + ["", ""])[:3])
    return {"name": name or None, "driver": driver or None,
            "memory_mib": int(memory) if memory.isdigit() else None}


def device_record(device: str = "cuda", commit: str | None = None) -> dict[str, Any]:
    """Where a GPU run ran: the device (``nvidia-smi`` and torch), the versions, the CPU, the date, the commit.

    ``commit``: the tree's commit when the machine has no git checkout (``FASTFCN_COMMIT`` in the script).
    On the CPU ``name`` is the CPU model.
    """
    import torch

    from ..utils.environment import cpu_model, git_commit

    record: dict[str, Any] = {
        "device": device, "name": None, "driver": None, "memory_mib": None, "capability": None,
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit or git_commit(),
    }
    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        record.update({k: v for k, v in _nvidia_smi(index).items() if v is not None})
        record["name"] = record["name"] or torch.cuda.get_device_name(index)
        record["capability"] = ".".join(map(str, torch.cuda.get_device_capability(index)))
        if record["memory_mib"] is None:
            record["memory_mib"] = torch.cuda.get_device_properties(index).total_memory // 2**20
    else:
        record["name"] = cpu_model()
    return record


def write_device_json(path: str | Path, device: str = "cuda", commit: str | None = None) -> Path:
    """:func:`device_record` as ``path`` (``device.json``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(device_record(device, commit), indent=1) + "\n")
    return path


@dataclass(frozen=True)
class GpuRun:
    """A GPU run's files, read back: ``device.json`` and the ``fastfcn bench`` documents (None where absent)."""

    folder: Path
    device: dict[str, Any]
    fp32: dict[str, Any]
    amp: dict[str, Any] | None = None
    fast_path: dict[str, Any] | None = None


def _read(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing or half-written: the run is shown without it
    return doc if isinstance(doc, dict) else None


def load_gpu_run(folder: str | Path) -> GpuRun | None:
    """The run in ``folder`` (``book/results/gpu``), or None when it holds no fp32 benchmark with results."""
    folder = Path(folder)
    fp32 = _read(folder / FILES["fp32"])
    if not fp32 or not fp32.get("results"):
        return None
    amp = _read(folder / FILES["amp"])
    fast = _read(folder / FILES["fast_path"])
    return GpuRun(folder, _read(folder / FILES["device"]) or {}, fp32,
                  amp if amp and amp.get("results") else None, (fast or {}).get("fast_path"))


def describe_gpu_run(run: GpuRun) -> str:
    """Two lines: the GPU, its driver, the versions, the date and the commit of the run."""
    d, env = run.device, run.fp32.get("environment") or {}
    name = d.get("name") or env.get("device_name") or "device not recorded"
    driver = f", driver {d['driver']}" if d.get("driver") else ""
    cuda = d.get("cuda") or env.get("cuda")
    commit = d.get("commit") or env.get("git_commit")
    opts = run.fp32.get("options") or {}
    return (f"{name}{driver}, torch {d.get('torch') or env.get('torch', '?')}"
            + (f", CUDA {cuda}" if cuda else "")
            + f", {str(d.get('date') or env.get('created') or '?')[:10]},\n  "
            + (f"commit {commit[:10]}" if commit else "commit not recorded")
            + f"; {opts.get('size', '?')}x{opts.get('size', '?')}, batch {opts.get('batch', '?')}, "
              f"median of {opts.get('runs', '?')} runs after {opts.get('warmup', '?')} warm-up")


def _key(r: dict[str, Any]) -> tuple[Any, ...]:
    return r["kind"], r["name"], r.get("paper_backbone") or r.get("backbone"), bool(r.get("dilated_backbone"))


def _ratio(a: Any, b: Any) -> float | None:
    return a / b if a is not None and b else None


def gpu_rows(run: GpuRun) -> list[dict[str, Any]]:
    """One row per model timed in inference in fp32: its FPS three ways, the ratio to the dilated model
    (ours and the paper's), the paper's Titan-Xp FPS, and its FPS and speed-up with bf16 + channels_last."""
    amp = {_key(r): r for r in (run.amp or {}).get("results", []) if r.get("mode") == "inference"}
    rows = []
    for r in run.fp32["results"]:
        if r.get("mode") != "inference":
            continue
        a = amp.get(_key(r))
        rows.append({
            "kind": r["kind"], "name": r["name"], "head": r.get("head"), "upsampling": r.get("upsampling"),
            "backbone": r.get("paper_backbone") or r.get("backbone"), "dilated_backbone": r.get("dilated_backbone"),
            "fps": r["fps"], "fps_cuda_events": r.get("fps_cuda_events"),
            "fps_unsynchronised": r.get("fps_unsynchronised"),
            "unsynchronised_factor": _ratio(r.get("fps_unsynchronised"), r["fps"]),
            "ratio": r.get("ratio"), "paper_ratio": r.get("paper_ratio"), "paper_fps": r.get("paper_fps"),
            "amp_fps": a["fps"] if a else None, "amp_speedup": _ratio(a["fps"], r["fps"]) if a else None,
            "amp_ratio": a.get("ratio") if a else None,
            "peak_mib": None if r.get("peak_mem_bytes") is None else r["peak_mem_bytes"] / 2**20,
            "gmacs": r.get("gmacs"),
        })
    return rows


def format_gpu_table(rows: list[dict[str, Any]]) -> str:
    """The GPU's figures beside the paper's Titan-Xp, one line per model (see :func:`gpu_rows`)."""
    head = (f"{'model':<18} {'backbone':<9} {'FPS':>6} {'events':>6} {'unsync':>6} {'x':>5} {'x dil':>5} "
            f"{'paper':>5} {'p x dil':>7} {'AMP FPS':>7} {'AMP x':>5} {'MiB':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        name = r["name"] + (" (OS8)" if r["dilated_backbone"] and r["upsampling"] == "jpu" else "")
        lines.append(
            f"{name:<18} {r['backbone'] or '':<9} {r['fps']:>6.1f} {fmt(r['fps_cuda_events'], '6.1f'):>6} "
            f"{fmt(r['fps_unsynchronised'], '6.1f'):>6} {fmt(r['unsynchronised_factor'], '5.2f'):>5} "
            f"{fmt(r['ratio'], '5.2f'):>5} {fmt(r['paper_fps'], '5.1f'):>5} {fmt(r['paper_ratio'], '7.2f'):>7} "
            f"{fmt(r['amp_fps'], '7.1f'):>7} {fmt(r['amp_speedup'], '5.2f'):>5} {fmt(r['peak_mib'], '5.0f'):>5}")
    lines.append(textwrap.fill(
        "FPS: synchronised around each call (host clock); events: CUDA events (GPU clock); unsync: the official "
        "script's loop without synchronising, x = unsync / FPS; x dil: FPS / FPS of the dilated model (same head "
        "and backbone); paper: Titan-Xp FPS and x dilated (Table 2); AMP: bf16 autocast + channels_last, "
        "x = AMP FPS / FPS; MiB: peak memory of the forward, fp32.", width=len(head)))
    return "\n".join(lines)


def _find(rows: list[dict[str, Any]], head: str, backbone: str, upsampling: str = "jpu") -> dict[str, Any] | None:
    return next((r for r in rows if r["kind"] == "fastfcn" and r["head"] == head and r["backbone"] == backbone
                 and r["upsampling"] == upsampling and not r["dilated_backbone"]), None)


def _median(values: list[Any]) -> float:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else NAN


def gpu_figures(rows: list[dict[str, Any]] | None) -> Figures:
    """``gpu_<what>``: EncNet+JPU's speed-up over the dilated EncNet on the GPU and the paper's (R50, R101),
    the median effect of not synchronising and the median AMP speed-up; NaN where not measured."""
    rows = rows or []
    figures: Figures = {}
    for backbone, short in (("resnet50", "r50"), ("resnet101", "r101")):
        r = _find(rows, "encnet", backbone)
        figures[f"gpu_encnet_{short}_ratio"] = (round(r["ratio"], 2) if r and r["ratio"] else NAN, "x")
        figures[f"gpu_encnet_{short}_paper_ratio"] = (round(r["paper_ratio"], 2) if r and r["paper_ratio"] else NAN,
                                                       "x")
    figures["gpu_unsynchronised_factor"] = (_median([r["unsynchronised_factor"] for r in rows]), "x")
    figures["gpu_amp_speedup"] = (_median([r["amp_speedup"] for r in rows]), "x")
    figures.update(_work_figures(rows))
    return figures


def _correlation(xs: list[float], ys: list[float]) -> float:
    return round(statistics.correlation(xs, ys), 2) if len(xs) > 2 and len(set(xs)) > 1 and len(set(ys)) > 1 else NAN


def _work_figures(rows: list[dict[str, Any]]) -> Figures:
    """Whether latency follows arithmetic over the FastFCN rows: their latency and GMACs ranges and the
    correlation of latency with GMACs, on this GPU and on the paper's Titan-Xp (from its FPS)."""
    ours = [r for r in rows if r["kind"] == "fastfcn" and r.get("gmacs") and r["fps"]]
    ms, gmacs = [1000 / r["fps"] for r in ours], [r["gmacs"] for r in ours]
    paper = [r for r in ours if r["paper_fps"]]
    return {"gpu_latency_min_ms": (round(min(ms), 1) if ms else NAN, "ms"),
            "gpu_latency_max_ms": (round(max(ms), 1) if ms else NAN, "ms"),
            "gpu_gmacs_min": (round(min(gmacs)) if gmacs else NAN, "GMACs"),
            "gpu_gmacs_max": (round(max(gmacs)) if gmacs else NAN, "GMACs"),
            "gpu_latency_gmacs_r": (_correlation(gmacs, ms), ""),
            "paper_latency_gmacs_r": (_correlation([r["gmacs"] for r in paper], [1000 / r["paper_fps"] for r in paper]),
                                      "")}


def _measured(value: float) -> bool:
    return not math.isnan(value)


def gpu_summary(run: GpuRun, rows: list[dict[str, Any]]) -> str:
    """The figures of :func:`gpu_figures` in sentences."""
    f = {k: v for k, (v, _) in gpu_figures(rows).items()}
    name = run.device.get("name") or (run.fp32.get("environment") or {}).get("device_name") or "the GPU"
    parts = []
    if _measured(f["gpu_encnet_r50_ratio"]):
        parts.append(f"On the {name}, EncNet+JPU runs {f['gpu_encnet_r50_ratio']:.2f} times as fast as the dilated "
                     f"EncNet on ResNet-50 (paper, Titan-Xp: {f['gpu_encnet_r50_paper_ratio']:.2f})"
                     + (f" and {f['gpu_encnet_r101_ratio']:.2f} times on ResNet-101 (paper: "
                        f"{f['gpu_encnet_r101_paper_ratio']:.2f})." if _measured(f["gpu_encnet_r101_ratio"]) else "."))
    if _measured(f["gpu_unsynchronised_factor"]):
        parts.append(f"Timed without synchronising, as the official script does, the FPS reads "
                     f"{f['gpu_unsynchronised_factor']:.2f} times the synchronised figure (median over the models).")
    if _measured(f["gpu_amp_speedup"]):
        parts.append(f"bf16 autocast with channels_last runs them {f['gpu_amp_speedup']:.2f} times as fast as fp32 "
                     "(median).")
    if _measured(f["gpu_latency_gmacs_r"]):
        follows = "barely follows" if f["gpu_latency_gmacs_r"] < 0.5 else "follows"
        parts.append(f"Across the FastFCN rows a forward pass takes {f['gpu_latency_min_ms']:.1f} to "
                     f"{f['gpu_latency_max_ms']:.1f} ms for {f['gpu_gmacs_min']:.0f} to {f['gpu_gmacs_max']:.0f} GMACs: "
                     f"latency {follows} the arithmetic (correlation {f['gpu_latency_gmacs_r']:.2f}"
                     + (f"; the paper's Titan-Xp latencies: {f['paper_latency_gmacs_r']:.2f})."
                        if _measured(f["paper_latency_gmacs_r"]) else ")."))
    return " ".join(parts) or "The GPU run holds no Table 2 row timed in inference."


def main(argv: list[str] | None = None) -> int:
    """``python -m fastfcn.benchmark.gpu_report device PATH [--device cuda] [--commit SHA]``."""
    p = argparse.ArgumentParser(prog="python -m fastfcn.benchmark.gpu_report",
                                description="Write the device record of a GPU run (device.json).")
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("device", help="write device.json")
    q.add_argument("path", type=Path)
    q.add_argument("--device", default="cuda")
    q.add_argument("--commit", default=None, help="the tree's commit (default: git, when it is a checkout)")
    args = p.parse_args(argv)
    path = write_device_json(args.path, args.device, args.commit or None)
    print(f"{path}: {json.loads(path.read_text())['name']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
