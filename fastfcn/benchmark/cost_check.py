"""The roofline cost model (:mod:`~fastfcn.benchmark.cost_model`) checked where it can be, and applied where it cannot.

* On this machine: its peak arithmetic and memory bandwidth are measured (:func:`measure_machine`), every
  Table 2 row's time is predicted from its layers with them, and the prediction is compared with the
  latency the benchmark measured in the same run (:func:`validate`: per row, the Spearman rank
  correlation and the median relative error). No model is timed again.
* On the GPUs of :data:`~fastfcn.benchmark.cost_model.GPUS`: the predicted FPS of every row and its ratio
  to the dilated model (:func:`gpu_predictions`), beside the paper's Titan-Xp figures and mmsegmentation's
  V100 fps (:mod:`fastfcn.third_party`), and where the predicted time goes (:func:`time_by_part`).

The networks are built on the ``meta`` device: shapes only, so the layers of all rows cost seconds.
"""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from .. import third_party
from ..utils.text import PRINT_WIDTH
from ..utils.timing import time_calls
from .cost_model import GPUS, LAUNCH_SECONDS, Gpu, Layer, layers, predict_seconds
from .models import build_spec_model
from .options import BenchOptions
from .specs import ModelSpec

__all__ = ["measure_machine", "spearman", "row_spec", "table_layers", "validate", "gpu_predictions",
           "time_by_part", "format_validation", "format_gpu_predictions", "format_time_by_part", "cost_figures"]

MMSEG_SETTING = ("ADE20K", 80000)  # the mmsegmentation rows with fps for both the dilated and the JPU model


def measure_machine(matmul_size: int = 1536, copy_mib: int = 256, runs: int = 3, device: str = "cpu") -> Gpu:
    """This machine's peak fp32 FLOP/s (the best of ``runs`` ``matmul_size``-square matrix products) and
    memory bandwidth (the best of ``runs`` copies of a ``copy_mib`` MiB tensor: bytes read + written), as
    a :class:`Gpu` record that the cost model accepts. Best, not median: a peak is what the machine can do."""
    if matmul_size < 1 or copy_mib < 1 or runs < 1:
        raise ValueError(f"measure_machine needs positive sizes and runs, got {matmul_size}, {copy_mib}, {runs}")
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(matmul_size, matmul_size, generator=gen).to(device) for _ in range(2))
    matmul = min(time_calls(lambda: torch.mm(a, b), runs=runs, warmup=1, device=device))
    source = torch.ones(copy_mib * 2**20 // 4, device=device)
    target = torch.empty_like(source)
    copy = min(time_calls(lambda: target.copy_(source), runs=runs, warmup=1, device=device))
    peak, bandwidth = 2 * matmul_size**3 / matmul, 2 * source.numel() * 4 / copy
    return Gpu(f"this machine ({device})", peak, bandwidth,
               f"measured: {matmul_size}x{matmul_size} fp32 matmul, {copy_mib} MiB copy, best of {runs}")


def _ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of the ranks they span."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's correlation of the ranks (ties get their mean rank).
    NaN when fewer than two pairs or when either side is constant."""
    if len(x) != len(y):
        raise ValueError(f"spearman needs two sequences of one length, got {len(x)} and {len(y)}")
    if len(x) < 2:
        return math.nan
    rx, ry = _ranks(x) - (len(x) + 1) / 2, _ranks(y) - (len(y) + 1) / 2
    denominator = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / denominator if denominator else math.nan


def row_spec(row: dict[str, Any]) -> ModelSpec:
    """The :class:`ModelSpec` of a row of :func:`~fastfcn.benchmark.run_benchmark`'s table."""
    return ModelSpec(row["kind"], row["name"], row["head"], row["backbone"], row["upsampling"], row["paper_backbone"],
                     row["dilated_backbone"])


@contextlib.contextmanager
def _no_initialisation() -> Iterator[None]:
    """The initialisers leave the weights as they are: on the meta device they compute nothing anyway,
    but run PyTorch's Python decompositions, which take most of a meta build's time."""
    names = [n for n in dir(torch.nn.init) if n.endswith("_") and not n.startswith("_")]
    saved = {n: getattr(torch.nn.init, n) for n in names}
    try:
        for n in names:
            setattr(torch.nn.init, n, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for n, fn in saved.items():
            setattr(torch.nn.init, n, fn)


def table_layers(table: Sequence[dict[str, Any]], opts: BenchOptions, size: int | None = None,
                 paper_backbones: bool = False) -> list[list[Layer]]:
    """The cost model's layers of every row, built on the meta device at ``size`` (default: the row's own).
    ``paper_backbones``: rows that the profile built on a substitute trunk are built on the paper's."""
    out = []
    for row in table:
        spec = row_spec(row)
        if paper_backbones and spec.kind == "fastfcn" and spec.paper_backbone:
            spec = replace(spec, backbone=spec.paper_backbone + "s")  # the official deep stem, as the chapter's rows
        with torch.device("meta"), _no_initialisation():
            model = build_spec_model(spec, opts)
        out.append(layers(model, size or row["size"]))
    return out


def _label(row: dict[str, Any]) -> str:
    """``encnet/jpu resnet50``; torchvision's names already say their trunk (``deeplabv3_resnet101``)."""
    backbone = row["paper_backbone"] or row["backbone"]
    return row["name"] if row["name"].endswith(f"_{backbone}") else f"{row['name']} {backbone}"


def validate(table: Sequence[dict[str, Any]], row_layers: Sequence[list[Layer]], machine: Gpu,
             launch: float = LAUNCH_SECONDS) -> dict[str, Any]:
    """Every row's predicted time on ``machine`` beside the latency the benchmark measured for it."""
    if len(table) != len(row_layers):
        raise ValueError(f"{len(table)} rows but layers for {len(row_layers)}")
    rows = []
    for row, found in zip(table, row_layers, strict=True):
        predicted, measured = predict_seconds(found, machine, launch), row["latency_median_s"]
        rows.append({"model": _label(row), "predicted_s": predicted, "measured_s": measured,
                     "ratio": predicted / measured})
    errors = [abs(r["ratio"] - 1) for r in rows]
    return {"machine": machine, "launch_s": launch, "rows": rows,
            "spearman": spearman([r["predicted_s"] for r in rows], [r["measured_s"] for r in rows]),
            "median_abs_rel_error": statistics.median(errors) if errors else math.nan}


def _mmseg_fps(row: dict[str, Any]) -> float | None:
    """mmsegmentation's V100 fps for the same head on ResNet-50 (dilated or JPU), ADE20K 80k."""
    variant = {"none": "dilated", "jpu": "jpu"}.get(row["upsampling"])
    if row["kind"] != "fastfcn" or row["dilated_backbone"] or row["paper_backbone"] != "resnet50" or not variant:
        return None
    return next((r.fps for r in third_party.RESULTS if r.source == "mmseg" and r.head == row["head"]
                 and r.variant == variant and (r.dataset, r.schedule) == MMSEG_SETTING and r.fps), None)


def gpu_predictions(table: Sequence[dict[str, Any]], row_layers: Sequence[list[Layer]],
                    gpus: Sequence[Gpu] = tuple(GPUS.values()), launch: float = LAUNCH_SECONDS) -> list[dict[str, Any]]:
    """Per row: predicted FPS on each GPU and its ratio to the dilated model of the same head and trunk,
    with the paper's FPS and ratio and mmsegmentation's fps and ratio where they exist."""
    out = []
    for row, found in zip(table, row_layers, strict=True):
        out.append({"model": _label(row), "row": row, "layers": found, "paper_fps": row.get("paper_fps"),
                    "paper_ratio": row.get("paper_ratio"), "mmseg_fps": _mmseg_fps(row),
                    "fps": {g.name: 1 / predict_seconds(found, g, launch) for g in gpus}})
    for p in out:
        r = p["row"]
        base = next((q for q in out if q["row"]["kind"] == "fastfcn" and r["kind"] == "fastfcn"
                     and q["row"]["upsampling"] == "none" and not q["row"]["dilated_backbone"]
                     and (q["row"]["head"], q["row"]["backbone"]) == (r["head"], r["backbone"])), None)
        p["ratio"] = {g: p["fps"][g] / base["fps"][g] for g in p["fps"]} if base else None
        p["mmseg_ratio"] = (p["mmseg_fps"] / base["mmseg_fps"]
                            if base and p["mmseg_fps"] and base["mmseg_fps"] else None)
    return out


def time_by_part(found: Sequence[Layer], gpu: Gpu, launch: float = LAUNCH_SECONDS) -> dict[str, dict[str, float]]:
    """Predicted seconds per top-level part (backbone, upsample, head, aux_head, ...), and how much of it
    is in memory-bound layers."""
    parts: dict[str, dict[str, float]] = {}
    for layer in found:
        part = parts.setdefault(layer.name.split(".")[0].split(" ")[0], {"seconds": 0.0, "memory_bound_s": 0.0})
        seconds = layer.seconds(gpu, launch)
        part["seconds"] += seconds
        part["memory_bound_s"] += seconds if layer.bound(gpu) == "memory" else 0.0
    return parts


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def format_validation(validation: dict[str, Any]) -> str:
    m = validation["machine"]
    lines = [f"{m.name}: {m.peak_flops / 1e9:.1f} GFLOP/s, {m.bandwidth / 1e9:.1f} GB/s",
             f"  ({m.source});",
             f"  launch cost {validation['launch_s'] * 1e6:.0f} us per layer call (assumed)",
             f"{'model':<28} {'predicted ms':>12} {'measured ms':>11} {'pred/meas':>9}"]
    lines += [f"{r['model']:<28} {r['predicted_s'] * 1e3:>12.1f} {r['measured_s'] * 1e3:>11.1f} {r['ratio']:>9.2f}"
              for r in validation["rows"]]
    lines.append(f"Spearman rank correlation {_fmt(validation['spearman'], '.3f')}; median |predicted/measured - 1| "
                 f"{_fmt(validation['median_abs_rel_error'], '.1%')}")
    return "\n".join(lines)


def format_gpu_predictions(predictions: Sequence[dict[str, Any]]) -> str:
    """The roofline's FPS per GPU beside the paper's and mmsegmentation's, columns as wide as their contents."""
    gpus = list(predictions[0]["fps"]) if predictions else []
    mw = max([len("model"), *(len(p["model"]) for p in predictions)])
    gw = {g: max(7, len(g[:12])) for g in gpus}
    head = f"{'model':<{mw}}" + "".join(f" {g[:12]:>{gw[g]}} {'x':>5}" for g in gpus)
    head += f" {'paper':>6} {'x':>5} {'mmseg':>6} {'x':>5}"
    lines = [head, "-" * len(head)]
    for p in predictions:
        cells = "".join(f" {p['fps'][g]:>{gw[g]}.1f} {_fmt(p['ratio'][g] if p['ratio'] else None, '5.2f'):>5}"
                        for g in gpus)
        lines.append(f"{p['model']:<{mw}}{cells} {_fmt(p['paper_fps'], '6.2f'):>6} {_fmt(p['paper_ratio'], '5.2f'):>5} "
                     f"{_fmt(p['mmseg_fps'], '6.2f'):>6} {_fmt(p['mmseg_ratio'], '5.2f'):>5}")
    lines += ["predicted FPS at 512x512, batch 1, fp32, from the roofline model;",
              "x: FPS / FPS of the dilated model of the same head and trunk.",
              "paper: the paper's FPS on a Titan-Xp (Table 2).",
              "mmseg: mmsegmentation's FPS on a V100, ADE20K, ResNet-50",
              "  (fastfcn/third_party.py; whole-image inference of ADE20K's images, 150 classes)"]
    return "\n".join(lines)


def format_time_by_part(predictions: Sequence[dict[str, Any]], gpu: Gpu, width: int = PRINT_WIDTH) -> str:
    """One line per model, its parts after the model column; parts past ``width`` characters go on a
    line of their own under the first."""
    lines = [f"predicted ms on {gpu.name} per part (memory-bound share in brackets)"]
    column = max((len(p["model"]) for p in predictions), default=0)
    for p in predictions:
        parts = time_by_part(p["layers"], gpu)
        line = f"{p['model']:<{column}}"
        for name, v in parts.items():
            if v["seconds"] > 0:
                part = f"{name} {v['seconds'] * 1e3:.1f} ({v['memory_bound_s'] / v['seconds']:.0%})"
                if len(line) + 2 + len(part) > width and line.strip():
                    lines.append(line)
                    line = " " * column
                line += "  " + part
        lines.append(line)
    return "\n".join(lines)


def _head_and_backbone_shares(p: dict[str, Any], gpu: Gpu) -> tuple[float, float]:
    parts = time_by_part(p["layers"], gpu)
    total = sum(v["seconds"] for v in parts.values())
    return (parts.get("head", {"seconds": 0.0})["seconds"] / total,
            parts.get("backbone", {"seconds": 0.0})["seconds"] / total)


def cost_figures(validation: dict[str, Any], predictions: Sequence[dict[str, Any]],
                 gpu: str = "V100") -> dict[str, tuple[float, str | None]]:
    """The figures the chapter's prose quotes: ``name: (value, unit)``. The JPU rows with the largest and
    the smallest predicted speed-up on ``gpu``, and the share of their time in the head and the backbone."""
    m = validation["machine"]
    out: dict[str, tuple[float, str | None]] = {
        "cost_machine_gflops": (round(m.peak_flops / 1e9, 1), "GFLOP/s"),
        "cost_machine_bandwidth": (round(m.bandwidth / 1e9, 1), "GB/s"),
        "cost_launch_us": (validation["launch_s"] * 1e6, "us"),
        "cost_spearman": (round(validation["spearman"], 3), None),
        "cost_median_error_pct": (round(100 * validation["median_abs_rel_error"], 1), "%"),
        "cost_rows": (len(validation["rows"]), None)}
    jpu = [p for p in predictions if p["row"]["upsampling"] == "jpu" and not p["row"]["dilated_backbone"]
           and p["ratio"]]
    if not jpu:
        return out
    g = GPUS[gpu]
    for tag, p in (("best", max(jpu, key=lambda q: q["ratio"][gpu])), ("worst", min(jpu, key=lambda q: q["ratio"][gpu]))):
        base = next(q for q in predictions if q["row"]["kind"] == "fastfcn" and q["row"]["upsampling"] == "none"
                    and not q["row"]["dilated_backbone"]
                    and (q["row"]["head"], q["row"]["backbone"]) == (p["row"]["head"], p["row"]["backbone"]))
        head_jpu, _ = _head_and_backbone_shares(p, g)
        _, backbone_dilated = _head_and_backbone_shares(base, g)
        out |= {f"cost_{tag}_ratio": (round(p["ratio"][gpu], 2), "x"),
                f"cost_{tag}_paper_ratio": (round(p["paper_ratio"], 2) if p["paper_ratio"] else math.nan, "x"),
                f"cost_{tag}_head_share_pct": (round(100 * head_jpu), "%"),
                f"cost_{tag}_head_ms": (round(time_by_part(p["layers"], g)["head"]["seconds"] * 1e3, 1), "ms"),
                f"cost_{tag}_dilated_backbone_share_pct": (round(100 * backbone_dilated), "%")}
    return out


def _mmseg_phrase(predictions: Sequence[dict[str, Any]], gpu: str) -> str:
    paired = [p for p in predictions if p["row"]["upsampling"] == "jpu" and p["mmseg_ratio"] and p["ratio"]]
    if not paired:
        return "have no row beside this profile's"
    slower = [p for p in paired if p["mmseg_ratio"] < 1]
    if not slower:
        return f"ran faster with JPU for all {len(paired)} heads, as the model predicts for them"
    predicted = sum(p["ratio"][gpu] > 1 for p in slower)
    return (f"ran at fewer fps with JPU than without it for {len(slower)} of {len(paired)} heads, where the model "
            f"predicts a speed-up for {predicted} of them: what it leaves out (mmsegmentation's own modules, whole-image "
            "inference of ADE20K's variously sized images, the post-processing its fps includes) decides there")


def cost_phrases(validation: dict[str, Any], predictions: Sequence[dict[str, Any]], gpu: str = "V100") -> dict[str, str]:
    """The Markdown phrases of the prose: the rows named, and how far the validation lets one trust the GPU figures."""
    rho = validation["spearman"]
    order = ("orders the rows almost as they were measured" if rho >= 0.9 else
             "orders the rows roughly as they were measured" if rho >= 0.6 else
             "does not order the rows as they were measured")
    trust = ("read the GPU figures for their order and their ratios, the quantities it got right here, not "
             "as frame rates a GPU would reach" if rho >= 0.6 else
             "read the GPU figures as an illustration of the roofline argument, not as a prediction: on the one "
             "machine where it could be checked, the model did not even rank the rows")
    out = {"cost_order": order, "cost_trust": trust,
           "cost_scale": "over" if statistics.median(r["ratio"] for r in validation["rows"]) > 1 else "under"}
    jpu = [p for p in predictions if p["row"]["upsampling"] == "jpu" and not p["row"]["dilated_backbone"]
           and p["ratio"]]
    out["cost_mmseg_phrase"] = _mmseg_phrase(predictions, gpu)
    if jpu:
        out["cost_best_model"] = f"`{max(jpu, key=lambda q: q['ratio'][gpu])['model']}`"
        out["cost_worst_model"] = f"`{min(jpu, key=lambda q: q['ratio'][gpu])['model']}`"
    return out
