"""Benchmark output: CSV and JSON files with the environment stamp, the terminal tables, the book's figures.

:func:`format_table` prints results beside the paper's FPS (Titan-Xp) and the paper's speed-up ratios
(ratios, not absolute FPS, are what compare across machines). The other ``format_*`` functions and the
``*_figures`` functions are the tables and the numbers chapter 6 ("How fast is FastFCN?") prints and
quotes in its prose; they take the result dicts of :func:`~fastfcn.benchmark.run_benchmark`,
:func:`~fastfcn.benchmark.training_memory_fit` and :func:`~fastfcn.benchmark.fast_path`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .. import paper
from ..utils.environment import cpu_model, environment
from ..utils.io import atomic_write_text
from ..utils.text import fit_lines
from .options import BenchOptions
from .rounds import timing_words

__all__ = ["DEFAULT_RESULTS_DIR", "CSV_FIELDS", "NAN", "Figures", "write_csv", "write_json", "load_json",
           "gpu_result_files", "default_output_name", "fmt", "format_table", "find_row", "describe_run",
           "format_ratio_table", "ratio_figures", "compare_with_paper", "speedup_figures",
           "format_official_comparison", "official_latency_ratio", "format_cost_per_gmac", "peak_memory_ratio",
           "dilated_vs_jpu", "format_memory_fits", "format_work_split", "trained_figures", "trained_phrases",
           "format_gpu_comparison"]

NAN = float("nan")  # a figure this run did not measure (recorded as null in a chapter's results)

Figures = dict[str, tuple[Any, str | None]]  # name -> (value, unit): key figures for a chapter's ``note``

# relative to the current directory: the repository's committed results when run from its root
DEFAULT_RESULTS_DIR = Path("book") / "results"

CSV_FIELDS = ["name", "kind", "head", "backbone", "upsampling", "paper_backbone", "dilated_backbone",
               "output_stride", "mode", "batch", "size", "device", "dtype", "channels_last", "compile", "aux",
               "threads", "runs", "warmup", "params", "gmacs", "activation_bytes", "latency_median_s",
               "latency_q25_s", "latency_q75_s", "latency_min_s", "latency_max_s", "latency_mean_s", "fps",
               "fps_unsynchronised", "fps_cuda_events", "peak_mem_bytes", "peak_total_bytes", "baseline_bytes",
               "memory_method", "isolated", "paper_fps", "ratio", "paper_ratio", "official_cpu_latency_s", "wall_s"]


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
    """A terminal table: ours beside the paper's FPS (Titan-Xp) and the paper's speed-up over dilated. Columns
    are as wide as their contents; the mode and batch, when every row shares them, go in a line above, and the
    official implementation's latency only where some row has one: 100 characters hold a row."""
    modes = {(r["mode"], r["batch"]) for r in results}
    shared = len(modes) == 1
    official = any(r.get("official_cpu_latency_s") is not None for r in results)
    iqrs = [f"{r['latency_q25_s'] * 1e3:.0f}-{r['latency_q75_s'] * 1e3:.0f}" for r in results]
    mw = max([len("model"), *(len(r["name"]) for r in results)])
    bw = max([len("backbone"), *(len(r["backbone"] or "") for r in results)])
    iw = max([len("IQR ms"), *map(len, iqrs)])
    head = (f"{'model':<{mw}} {'backbone':<{bw}} {'OS':>2} " + ("" if shared else f"{'mode':<9} {'bs':>2} ")
            + f"{'Mparams':>7} {'GMACs':>5} {'ms':>5} {'IQR ms':>{iw}} {'FPS':>6} {'MiB':>5} {'x dil':>5} "
            f"{'paper':>6} {'p x dil':>7}" + (f" {'offic s':>7}" if official else ""))
    lines = [f"{results[0]['mode']}, batch {results[0]['batch']}"] if shared and results else []
    lines += [head, "-" * len(head)]
    for r, iqr in zip(results, iqrs, strict=True):
        mem = None if r.get("peak_mem_bytes") is None else r["peak_mem_bytes"] / 2**20
        lines.append(
            f"{r['name']:<{mw}} {r['backbone'] or '':<{bw}} {r['output_stride']:>2} "
            + ("" if shared else f"{r['mode']:<9} {r['batch']:>2} ")
            + f"{r['params'] / 1e6:>7.1f} {r['gmacs']:>5.1f} {r['latency_median_s'] * 1e3:>5.0f} {iqr:>{iw}} "
            f"{r['fps']:>6.2f} {fmt(mem, '5.0f'):>5} {fmt(r.get('ratio'), '5.2f'):>5} "
            f"{fmt(r.get('paper_fps'), '6.2f'):>6} {fmt(r.get('paper_ratio'), '7.2f'):>7}"
            + (f" {fmt(r.get('official_cpu_latency_s'), '7.2f'):>7}" if official else ""))
    lines += ["ms: median latency; MiB: peak memory; OS: output stride.",
              "x dil: FPS / FPS of the same head and backbone without upsampling.",
              "paper: FPS on a Titan-Xp, 512x512, mean of 100 runs (the paper's Table 2); p x dil: its x dil."]
    if official:
        lines += ["offic s: the official implementation's latency, as measured by this project (not in the paper)",
                  f"  on {paper.OFFICIAL_CPU_MACHINE}, shown on a CPU of that kind only."]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# chapter 6: the tables it prints and the figures its prose quotes


def find_row(results: Sequence[dict[str, Any]], head: str, upsampling: str, backbone: str = "resnet50",
             **extra: Any) -> dict[str, Any] | None:
    """The fastfcn result for one Table 2 row (plain backbone), or None when it was not measured.

    ``backbone`` is the paper's (``resnet50``/``resnet101``); ``extra`` fields must match too (e.g. ``mode="train"``).
    """
    for r in results:
        if (r["kind"] == "fastfcn" and r["head"] == head and r["upsampling"] == upsampling
                and r["paper_backbone"] == backbone and not r["dilated_backbone"]
                and all(r.get(k) == v for k, v in extra.items())):
            return r
    return None


def describe_run(profile: str, opts: BenchOptions, env: dict[str, Any], substitute: str | None = None,
                 models: int = 2) -> str:
    """What this run measures on: the machine, the input, the repetitions of ``models`` models (``opts``
    validated)."""
    memory = "peak memory one fresh process per measurement" if opts.isolate else "in-process"
    lines = [f"profile {profile!r}: {env['device_name']} ({opts.device}), {env['torch_threads']} threads, "
             f"torch {env['torch']}, torchvision {env['torchvision']}",
             f"input {opts.size}x{opts.size}, batch {opts.batch}, fp32, {timing_words(opts, models)}; {memory}"]
    if substitute:
        lines.append(f"every Table 2 row is built on {substitute} here (smoke profile): the paper's columns are "
                     "for ResNet-50/101")
    return fit_lines(lines)


def _upsampled(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if r["kind"] == "fastfcn" and r["upsampling"] != "none" and r["ratio"] is not None]


def format_ratio_table(results: Sequence[dict[str, Any]]) -> str:
    """Our speed-up over the dilated model beside the paper's, one line per upsampled model."""
    lines = [f"{'head':<7} {'backbone':<10} {'upsampling':<10} {'ours x dilated':>14} {'paper x dilated':>15} "
             f"{'ours / paper':>12}"]
    for r in _upsampled(results):
        lines.append(f"{r['head']:<7} {r['paper_backbone']:<10} {r['upsampling']:<10} {r['ratio']:>14.2f} "
                     f"{r['paper_ratio']:>15.2f} {r['ratio'] / r['paper_ratio']:>12.2f}")
    return "\n".join(lines)


def ratio_figures(results: Sequence[dict[str, Any]]) -> dict[str, float]:
    """``ratio_<head>_<backbone>_<upsampling>`` and ``paper_ratio_...`` (x dilated, 3 decimals) per upsampled model."""
    figures = {}
    for r in _upsampled(results):
        key = f"{r['head']}_{r['paper_backbone']}_{r['upsampling']}"
        figures[f"ratio_{key}"] = round(r["ratio"], 3)
        figures[f"paper_ratio_{key}"] = round(r["paper_ratio"], 3)
    return figures


def compare_with_paper(ratio: float, paper_ratio: float) -> str:
    """How our speed-up compares with the paper's, for the prose (within 5 %: "about the same as")."""
    if ratio < 0.95 * paper_ratio:
        return "smaller than"
    return "about the same as" if ratio < 1.05 * paper_ratio else "larger than"


def speedup_figures(dilated: dict[str, Any] | None, upsampled: dict[str, Any] | None) -> dict[str, Any]:
    """One model against its dilated baseline: latencies (ms), GMAC ratio, FPS ratios and how they compare.

    NaN (and "not measured against") when either result is missing.
    """
    if not (dilated and upsampled):
        return {"dilated_latency_ms": NAN, "latency_ms": NAN, "gmacs_ratio": NAN, "ratio": NAN, "paper_ratio": NAN,
                "versus_paper": "not measured against"}
    return {"dilated_latency_ms": round(dilated["latency_median_s"] * 1e3, 1),
            "latency_ms": round(upsampled["latency_median_s"] * 1e3, 1),
            "gmacs_ratio": round(dilated["gmacs"] / upsampled["gmacs"], 2),
            "ratio": upsampled["ratio"], "paper_ratio": upsampled["paper_ratio"],
            "versus_paper": compare_with_paper(upsampled["ratio"], upsampled["paper_ratio"])}


def format_official_comparison(results: Sequence[dict[str, Any]]) -> str:
    """Our latency against the official implementation's, where that configuration was run on this kind of CPU."""
    official = [r for r in results if r["official_cpu_latency_s"] is not None]
    if not official:
        return (f"(the official implementation's CPU latencies were measured\n"
                f"  on {paper.OFFICIAL_CPU_MACHINE}:\n"
                f"  they apply to fp32, batch 1, 512x512 with the paper's backbones\n"
                f"  on a CPU with {paper.OFFICIAL_CPU_CAPABILITY} as torch's CPU capability; "
                "this run is not that)")
    lines = [f"ours against the official implementation, timed on {paper.OFFICIAL_CPU_MACHINE} (fp32, batch 1, "
             "512x512, aux head):"]
    for r in official:
        lines.append(f"  {r['name']:<14} {r['paper_backbone']:<10} ours {r['latency_median_s']:.2f} s, "
                     f"official {r['official_cpu_latency_s']:.2f} s "
                     f"({r['latency_median_s'] / r['official_cpu_latency_s']:.2f}x)")
    return "\n".join(lines)


def official_latency_ratio(results: Sequence[dict[str, Any]]) -> float | None:
    """Median of our latency / the official implementation's (3 decimals); None when no row compares."""
    ratios = [r["latency_median_s"] / r["official_cpu_latency_s"] for r in results
              if r["official_cpu_latency_s"] is not None]
    return round(float(statistics.median(ratios)), 3) if ratios else None


def format_cost_per_gmac(results: Sequence[dict[str, Any]], slope: float) -> str:
    """Each model's milliseconds per GMAC, cheapest first, after the fitted slope."""
    lines = [f"effective cost per model, ms per GMAC (the fit's slope is {slope:.2f}):"]
    for r in sorted(results, key=lambda r: r["latency_median_s"] * 1e3 / r["gmacs"]):
        lines.append(f"  {r['name']:<20} {r['backbone']:<10} {r['latency_median_s'] * 1e3 / r['gmacs']:6.2f}")
    return "\n".join(lines)


def peak_memory_ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    """``a``'s peak memory over ``b``'s (a missing peak counts as 0 over, 1 byte under)."""
    return (a["peak_mem_bytes"] or 0) / max(b["peak_mem_bytes"] or 1, 1)


def dilated_vs_jpu(sweep: Sequence[dict[str, Any]]) -> dict[int, dict[str, float]]:
    """Per input size of a sweep over the dilated and the JPU model: how many times more the dilated one needs.

    ``{size: {"latency_ratio", "memory_ratio", "dilated_peak_mib", "jpu_peak_mib"}}``, in the sweep's order.
    """
    dil = {r["size"]: r for r in sweep if r["upsampling"] == "none"}
    jpu = {r["size"]: r for r in sweep if r["upsampling"] == "jpu"}
    return {s: {"latency_ratio": dil[s]["latency_median_s"] / jpu[s]["latency_median_s"],
                "memory_ratio": peak_memory_ratio(dil[s], jpu[s]),
                "dilated_peak_mib": (dil[s]["peak_mem_bytes"] or 0) / 2**20,
                "jpu_peak_mib": (jpu[s]["peak_mem_bytes"] or 0) / 2**20} for s in dil}


def format_memory_fits(fits: Sequence[dict[str, Any]], size: int) -> str:
    """The training-memory fits: bytes saved for backward per image and the largest batch in the budget."""
    lines = [f"bytes saved for backward at {size}x{size} (training mode), and the largest batch for 12 GB:"]
    for f in fits:
        lines.append(f"  {f['name']:<12} {f['backbone']:<10} {f['per_image_bytes'] / 2**20:8.0f} MiB per image "
                     f"(+{f['other_fixed_bytes'] / 2**20:.0f} MiB fixed),\n    weights+grads+momentum "
                     f"{f['state_bytes'] / 2**20:.0f} MiB -> at most {f['max_batch']} images")
    return "\n".join(lines)


def format_work_split(labels: Sequence[str], parts: Sequence[dict[str, float]],
                      results: Sequence[dict[str, Any]]) -> str:
    """GMACs by part (``flops_by_part``) and measured latency, one line per labelled model."""
    lines = []
    for label, p, r in zip(labels, parts, results, strict=True):
        lines.append(f"{label.replace(chr(10), ' '):<22} backbone {p['backbone']:6.1f}  "
                     f"upsample {p.get('upsample', 0):5.1f}  head {p['head']:5.1f}  total {p['total']:6.1f} GMACs "
                     f"{r['latency_median_s'] * 1e3:6.0f} ms")
    return "\n".join(lines)


_TRAINED_UNITS = {"best_speedup": "x", "best_agreement_pct": "%", "input_rounding_pct": "%", "fp32_latency_ms": "ms",
                  "bf16_max_changed_pct": "%", "bf16_changed_on_boundary_pct": "%", "boundary_pct": "%",
                  "exact_max_changed_pct": "%", "bf16_min_changed_pct": "%", "early_changed_pct": "%",
                  "exact_speedup": "x", "fastest_speedup": "x", "fastest_changed_pct": "%"}


def trained_figures(fp: dict[str, Any] | None) -> Figures:
    """The figures chapter 6 quotes from a fast-path measurement on trained weights, ``trained_<what>``.

    Percentages of labels (``*_pct``), speed-ups over fp32 eager (``*_speedup``); "exact" variants keep fp32
    arithmetic. NaN when ``fp`` is None (nothing measured) or when no variant of a kind was measured.
    """
    values = dict.fromkeys(_TRAINED_UNITS, NAN)
    if fp is not None:
        variants = fp["variants"]
        exact_all = [v for v in variants if v["dtype"] == "fp32"]
        exact = min(exact_all, key=lambda v: v["latency_median_s"])
        fastest = min(variants, key=lambda v: v["latency_median_s"])
        bf16 = [v for v in variants if v["dtype"] == "bf16"]
        on_edge = [v["changed_on_boundary_fraction"] for v in bf16 if v["changed_on_boundary_fraction"] is not None]
        reduced = [100 * v["changed_fraction"] for v in variants if v["dtype"] != "fp32"]
        early = [100 * v["changed_fraction"] for v in variants if v["early_fp32"]]
        fp32 = next(v for v in variants if v["variant"] == "fp32")
        values.update(
            best_speedup=round(fp["best_speedup"], 2), best_agreement_pct=round(100 * fp["best_agreement"], 3),
            input_rounding_pct=round(100 * fp["input_rounding_changed_fraction"], 3),
            fp32_latency_ms=round(1e3 * fp32["latency_median_s"], 0),
            bf16_max_changed_pct=round(100 * max(v["changed_fraction"] for v in bf16), 3) if bf16 else NAN,
            bf16_changed_on_boundary_pct=round(100 * min(on_edge), 1) if on_edge else NAN,
            boundary_pct=round(100 * fp["boundary_fraction"], 2),
            exact_max_changed_pct=round(100 * max(v["changed_fraction"] for v in exact_all), 3),
            bf16_min_changed_pct=round(min(reduced), 3) if reduced else NAN,
            early_changed_pct=round(max(early), 3) if early else NAN,
            exact_speedup=round(exact["speedup"], 2), fastest_speedup=round(fastest["speedup"], 2),
            fastest_changed_pct=round(100 * fastest["changed_fraction"], 3))
    return {f"trained_{k}": (v, _TRAINED_UNITS[k]) for k, v in values.items()}


def trained_phrases(fp: dict[str, Any] | None, env: dict[str, Any] | None = None) -> dict[str, str]:
    """The Markdown phrases chapter 6 quotes from a trained-weights fast-path measurement (``env``: its machine)."""
    if fp is None:
        return dict.fromkeys(("trained_best_variant", "trained_exact_variant", "trained_fastest_variant",
                              "trained_cpu_bf16"), "(not measured)")
    exact = min((v for v in fp["variants"] if v["dtype"] == "fp32"), key=lambda v: v["latency_median_s"])
    fastest = min(fp["variants"], key=lambda v: v["latency_median_s"])
    flags = (env or {}).get("cpu_flags") or []
    cpu = ("the CPU it was measured on has AMX tiles, which multiply bf16 matrices far faster than fp32"
           if "amx_bf16" in flags else "the CPU it was measured on has AVX-512 BF16 instructions"
           if "avx512_bf16" in flags else "its CPU has no bf16 matrix instructions listed")
    return {"trained_best_variant": f"`{fp['best_variant']}`", "trained_exact_variant": f"`{exact['variant']}`",
            "trained_fastest_variant": f"`{fastest['variant']}`", "trained_cpu_bf16": cpu}


def format_gpu_comparison(gpu_results: Sequence[dict[str, Any]], cpu_results: Sequence[dict[str, Any]]) -> str:
    """The speed-up over the dilated model on a GPU beside this run's (CPU) and the paper's, with the GPU's FPS.

    One line per Table 2 row measured in inference on the GPU (``gpu_results``, from a ``bench_gpu_*.json``);
    "-" where this run (``cpu_results``) did not measure the row.
    """
    lines = [f"{'head':<7} {'backbone':<10} {'ups':<9} {'CPU x dilated':>13} {'GPU x dilated':>13} "
             f"{'paper x dilated':>15} {'GPU FPS':>8} {'GPU FPS unsynced':>16}"]
    for g in gpu_results:
        if g["kind"] != "fastfcn" or g["mode"] != "inference" or g.get("paper_ratio") is None:
            continue
        c = find_row(cpu_results, g["head"], g["upsampling"], g["paper_backbone"], mode="inference")
        lines.append(f"{g['head']:<7} {g['paper_backbone']:<10} {g['upsampling']:<9} "
                     f"{fmt(c and c['ratio'], '13.2f'):>13} {fmt(g.get('ratio'), '13.2f'):>13} "
                     f"{g['paper_ratio']:>15.2f} {g['fps']:>8.1f} {fmt(g.get('fps_unsynchronised'), '16.1f'):>16}")
    return "\n".join(lines)
