"""How fast is FastFCN? Latency, FPS and peak memory of the paper's Table 2 configurations.

Every row of Table 2 (EncNet/ASPP/PSP heads on ResNet-50/101, with no upsampling -- the dilated,
output-stride-8 baseline -- or bilinear/FPN/JPU on a plain output-stride-32 backbone), plus
torchvision's dilated ``deeplabv3_resnet50/101`` and ``fcn_resnet50``, is measured the same way:

* **Backbones.** By default the deep-stem ``resnet50s``/``resnet101s`` of the official models
  (``stem="torchvision"`` selects the 7x7-stem torchvision layout); a ``substitute`` backbone (e.g.
  ``resnet18``) builds every row on a small trunk for smoke tests.
* **Weights and inputs.** Random, seeded weights; inputs are synthetic images of flat coloured blocks
  (:func:`synthetic_images`). BatchNorm statistics are first set by one training-mode forward on
  small such images (:func:`calibrate_bn`): an untrained network in eval mode otherwise lets its
  activations grow by orders of magnitude through the residual blocks (about 1e5 in ResNet-101's
  C4 and C5), which overflows fp16. Timing does not depend on the weights' values; the fast path's label
  comparison does (see :mod:`fastfcn.fast_path`), and accepts a trained checkpoint.
* **Latency.** ``warmup`` untimed calls, then ``runs`` timed calls; on CUDA the device is
  synchronised before and after each call. We report the median, the quartiles and min/max;
  ``fps = batch / median``. ``official_fps=True`` also times the loop the way the official FPS
  script does, without synchronising the device: on a GPU that measures how fast the host queues
  the work (until the queue fills up), not how fast the GPU finishes it; on the CPU it is the same
  measurement. With ``compile=True`` the first call (compilation) is untimed and outside the peak
  memory.
* **Peak memory.** CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``,
  minus what was allocated before the measurement (weights, input). CPU: each measurement runs in
  a fresh Python process (``isolate=True``); it releases the allocator's free pages
  (``malloc_trim``), resets the kernel's peak-RSS counter (``/proc/self/clear_refs`` = 5), reads
  ``VmRSS`` as the baseline, and after warm-up and runs reads ``VmHWM``: the peak resident memory the
  measurement added (activations, workspaces and, for training, gradients and optimizer state) is
  ``VmHWM - baseline``. ``peak_total_bytes`` is the process's whole peak (interpreter, libraries,
  weights included). In-process measurements (``isolate=False``) use the same counters and are
  flagged; they can under-count when earlier measurements left pages the allocator reuses.
* **Training step.** forward + loss (cross-entropy, 0.2 x aux cross-entropy, 0.2 x SE-loss) +
  backward + SGD step (momentum 0.9), model in training mode, batch ``train_batch`` (>= 2: pooled
  branches have one value per image and BatchNorm needs two).
* **Complexity.** Parameters and GMACs (one multiply-add = one MAC, per image at batch 1) from
  :func:`fastfcn.complexity.complexity` on the meta device (no memory, no time).

Results are plain dicts (one per model x mode), written as CSV and JSON with an environment stamp;
:func:`format_table` prints them beside the paper's FPS (Titan-Xp) and the paper's speed-up ratios
(ratios, not absolute FPS, are what compare across machines).
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import gc
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import paper
from .complexity import complexity
from .model import HEADS, MEAN, STD, UPSAMPLINGS, build_model
from .resnet import BACKBONES, build_resnet

__all__ = ["DTYPES", "TORCHVISION_MODELS", "MODES", "RESULTS_DIR", "ModelSpec", "BenchOptions", "table2_specs",
           "torchvision_specs", "parse_rows", "dilated_jpu_spec", "build_spec_model", "synthetic_images", "calibrate_bn",
           "model_complexity", "flops_by_part", "measure", "run_benchmark",
           "training_memory_fit", "environment", "annotate", "format_table", "write_csv",
           "write_json", "load_json", "gpu_result_files", "default_output_name"]

DTYPES = ("fp32", "bf16", "fp16")
TORCHVISION_MODELS = ("deeplabv3_resnet50", "deeplabv3_resnet101", "fcn_resnet50")
MODES = ("inference", "train")
STEMS = ("deep", "torchvision")
RESULTS_DIR = Path(__file__).resolve().parents[1] / "book" / "results"
_RESULT_MARK = "FASTFCN_BENCH_RESULT "
_CALIBRATION_SIZE = 128
TITAN_XP_BYTES = 12 * 2**30  # the paper's GPU: 12 GB


# --------------------------------------------------------------------------------------------------
# what is measured


@dataclass(frozen=True)
class ModelSpec:
    """One network to measure: a FastFCN configuration or a torchvision segmentation model."""

    kind: str                        # "fastfcn" | "torchvision"
    name: str                        # display name: "encnet/jpu", "deeplabv3_resnet50", ...
    head: str | None = None
    backbone: str | None = None      # the backbone actually built (resnet50s, resnet18, ...)
    upsampling: str | None = None
    paper_backbone: str | None = None  # the Table 2 row it stands for (resnet50 | resnet101)
    dilated_backbone: bool = False   # bilinear/FPN/JPU on top of a dilated OS8 trunk (as some ports do)

    @property
    def output_stride(self) -> int:
        if self.kind == "torchvision" or self.upsampling == "none" or self.dilated_backbone:
            return 8
        return 32

    @property
    def paper_row(self) -> paper.Row | None:
        if self.kind != "fastfcn" or self.dilated_backbone:
            return None
        for r in paper.TABLE2:
            if (r.head, r.backbone, r.upsampling) == (self.head, self.paper_backbone, self.upsampling):
                return r
        return None


def _check_choices(what: str, values: Iterable[str] | None, options: Sequence[str]) -> list[str] | None:
    if values is None:
        return None
    values = [values] if isinstance(values, str) else list(values)
    bad = [v for v in values if v not in options]
    if bad:
        raise ValueError(f"unknown {what} {', '.join(map(repr, bad))}; choose from {', '.join(options)}")
    return values


def _our_backbone(paper_backbone: str, stem: str, substitute: str | None) -> str:
    if substitute is not None:
        if substitute not in BACKBONES:
            raise ValueError(f"unknown substitute backbone {substitute!r}; choose from {', '.join(BACKBONES)}")
        return substitute
    return paper_backbone + ("s" if stem == "deep" else "")


def table2_specs(backbones: Iterable[str] | None = None, heads: Iterable[str] | None = None,
                 upsamplings: Iterable[str] | None = None, stem: str = "deep",
                 substitute: str | None = None) -> list[ModelSpec]:
    """The rows of the paper's Table 2, optionally filtered.

    Args:
        backbones: the paper's backbones to keep (``resnet50``, ``resnet101``); default both.
        heads: ``encnet``, ``aspp``, ``psp``; upsamplings: ``none``, ``bilinear``, ``fpn``, ``jpu``.
        stem: ``"deep"`` builds ``resnet50s``/``resnet101s`` (three 3x3 stem convolutions, as the
            official models); ``"torchvision"`` builds the 7x7-stem ``resnet50``/``resnet101``.
        substitute: build every row on this backbone instead (e.g. ``resnet18`` for smoke tests).
    """
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose from {', '.join(STEMS)}")
    backbones = _check_choices("backbone", backbones, ("resnet50", "resnet101"))
    heads = _check_choices("head", heads, ("encnet", "aspp", "psp"))
    upsamplings = _check_choices("upsampling", upsamplings, UPSAMPLINGS)
    specs = []
    for r in paper.TABLE2:
        if ((backbones and r.backbone not in backbones) or (heads and r.head not in heads)
                or (upsamplings and r.upsampling not in upsamplings)):
            continue
        specs.append(ModelSpec("fastfcn", f"{r.head}/{r.upsampling}", r.head,
                               _our_backbone(r.backbone, stem, substitute), r.upsampling, r.backbone))
    if not specs:
        raise ValueError("the filters select no row of Table 2")
    return specs


def parse_rows(rows: str | Iterable[str], stem: str = "deep", substitute: str | None = None) -> list[ModelSpec]:
    """``"all"`` or ``["encnet/resnet50/jpu", ...]`` (head/paper backbone/upsampling) -> specs."""
    if rows == "all":
        return table2_specs(stem=stem, substitute=substitute)
    out = []
    for row in [rows] if isinstance(rows, str) else rows:
        parts = row.split("/")
        if len(parts) != 3:
            raise ValueError(f"a row is 'head/backbone/upsampling' (e.g. 'encnet/resnet50/jpu'), got {row!r}")
        if not any((r.head, r.backbone, r.upsampling) == tuple(parts) for r in paper.TABLE2):
            raise ValueError(f"{row!r} is not a row of Table 2")
        out += table2_specs([parts[1]], [parts[0]], [parts[2]], stem=stem, substitute=substitute)
    return out


def torchvision_specs(names: Iterable[str] | None = TORCHVISION_MODELS) -> list[ModelSpec]:
    """torchvision's dilated (output stride 8) segmentation models, built with ``weights=None``."""
    names = _check_choices("torchvision model", names, TORCHVISION_MODELS) or []
    return [ModelSpec("torchvision", n, "deeplabv3" if n.startswith("deeplab") else "fcn",
                      n.rsplit("_", 1)[1], "none", None) for n in names]


def dilated_jpu_spec(head: str = "encnet", paper_backbone: str = "resnet50", upsampling: str = "jpu",
                     stem: str = "deep", substitute: str | None = None) -> ModelSpec:
    """JPU (or FPN/bilinear) on a *dilated* output-stride-8 trunk: what a port that keeps the dilated
    backbone computes. C3, C4 and C5 are then all at 1/8 of the input."""
    _check_choices("head", [head], HEADS)
    _check_choices("upsampling", [upsampling], ("bilinear", "fpn", "jpu"))
    return ModelSpec("fastfcn", f"{head}/{upsampling}+dilated", head, _our_backbone(paper_backbone, stem, substitute),
                     upsampling, paper_backbone, dilated_backbone=True)


# --------------------------------------------------------------------------------------------------
# options


@dataclass
class BenchOptions:
    """How to measure. ``validated()`` resolves the device and rejects inconsistent settings."""

    device: str = "cpu"              # cpu | cuda | cuda:N | auto
    dtype: str = "fp32"              # fp32 | bf16 (autocast) | fp16 (autocast, CUDA only)
    channels_last: bool = False
    compile: bool = False            # torch.compile (Inductor); the first call (compilation) is a warm-up call
    batch: int = 1                   # inference batch
    train_batch: int = 2             # training-step batch
    size: int = 512                  # square input side
    runs: int = 5
    warmup: int = 2
    aux: bool = True                 # auxiliary FCN head (computed in the official models' forward)
    num_classes: int = 59
    jpu_width: int = 512
    official_fps: bool = False       # also time without synchronising (the official FPS method)
    threads: int | None = None       # torch.set_num_threads; None keeps PyTorch's default
    isolate: bool = True             # each measurement in a fresh process (CPU peak memory needs it)
    cudnn_benchmark: bool = False
    seed: int = 0

    def validated(self) -> BenchOptions:
        from .profiles import resolve_device

        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; choose from {', '.join(DTYPES)}")
        device = resolve_device(self.device)
        if device == "cpu" and self.dtype == "fp16":
            raise ValueError("fp16 autocast is for CUDA devices; on the CPU use dtype='bf16' "
                             "(AVX-512 BF16) or 'fp32'")
        if device.startswith("cuda") and self.dtype == "bf16" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"this GPU ({torch.cuda.get_device_name(device)}) does not support bf16; use fp16")
        for name in ("batch", "train_batch", "runs", "num_classes", "jpu_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.train_batch < 2:
            raise ValueError("train_batch must be at least 2: in training mode BatchNorm needs more than one "
                             "value per channel, and the pooled branches (PSP, ASPP image pooling) have one per image")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be a non-negative integer, got {self.warmup!r}")
        if not isinstance(self.size, int) or self.size < 32:
            raise ValueError(f"size must be an integer >= 32 (the plain backbone divides it by 32), got {self.size!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {self.threads!r}")
        return replace(self, device=device)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")


# --------------------------------------------------------------------------------------------------
# models


def build_spec_model(spec: ModelSpec, opts: BenchOptions) -> nn.Module:
    """The network of ``spec`` with random weights (on the current default device)."""
    if spec.kind == "torchvision":
        import torchvision.models.segmentation as tvs

        return getattr(tvs, spec.name)(weights=None, weights_backbone=None, num_classes=opts.num_classes,
                                       aux_loss=opts.aux)
    if spec.kind != "fastfcn":
        raise ValueError(f"unknown model kind {spec.kind!r}")
    model = build_model(spec.head, backbone=spec.backbone, upsampling=spec.upsampling, num_classes=opts.num_classes,
                        aux=opts.aux, jpu_width=opts.jpu_width)
    if spec.dilated_backbone:
        # same trunk, same channels, but dilated: C3, C4, C5 all come out at output stride 8
        model.backbone = build_resnet(spec.backbone, output_stride=8)
        model.config["backbone_output_stride"] = 8
    return model


def synthetic_images(batch: int, size: int, seed: int = 0, cells: int = 8) -> torch.Tensor:
    """Images of flat random-coloured blocks (``cells`` x ``cells``), normalised with MEAN/STD.

    Closer to a photograph's statistics (large uniform regions, sharp edges) than white noise; the
    networks see these for BatchNorm calibration, timing and the fast path's label comparison.
    """
    gen = torch.Generator().manual_seed(seed)
    rgb = F.interpolate(torch.rand(batch, 3, cells, cells, generator=gen), size=(size, size), mode="nearest")
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (rgb - mean) / std


def calibrate_bn(model: nn.Module, size: int = _CALIBRATION_SIZE, batch: int = 2, seed: int = 0) -> None:
    """Set every BatchNorm's running statistics from one training-mode forward on synthetic images.

    Keeps an untrained network's activations at a realistic scale in eval mode (see the module doc).
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    param = next(model.parameters())
    x = synthetic_images(batch, size, seed + 1).to(param.device, param.dtype)
    saved = [m.momentum for m in bns]
    was_training = model.training
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
        model.train()
        with torch.no_grad():
            model(x)
    finally:
        for m, mom in zip(bns, saved, strict=True):
            m.momentum = mom
        model.train(was_training)


def model_complexity(spec: ModelSpec, opts: BenchOptions) -> dict[str, Any]:
    """Parameters, GMACs (per image) and activation bytes, counted on the meta device."""
    with torch.device("meta"):
        model = build_spec_model(spec, opts)
    c = complexity(model, opts.size)
    return {"params": c.params, "gmacs": c.gmacs, "activation_bytes": c.activation_bytes}


def flops_by_part(spec: ModelSpec, opts: BenchOptions) -> dict[str, float]:
    """GMACs of the backbone, the upsampling module, the head and the aux head (meta device)."""
    with torch.device("meta"):
        model = build_spec_model(spec, opts)
    c = complexity(model, opts.size, by_module_depth=2)
    parts = {k: v / 2e9 for k, v in c.flops_by_module.items() if k and "." not in k}
    parts["total"] = c.gmacs
    return parts


# --------------------------------------------------------------------------------------------------
# timing and memory


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _autocast(opts: BenchOptions):
    if opts.dtype == "fp32":
        return contextlib.nullcontext()
    device_type = "cuda" if opts.is_cuda else "cpu"
    return torch.autocast(device_type, dtype=torch.bfloat16 if opts.dtype == "bf16" else torch.float16)


def _time_calls(fn: Callable[[], Any], runs: int, warmup: int, device: str) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(runs):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def _time_unsynchronised(fn: Callable[[], Any], runs: int, warmup: int) -> float:
    """The official FPS method: the loop's wall time, the device never synchronised."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(runs):
        fn()
    return time.perf_counter() - t0


def _quantile(sorted_values: list[float], q: float) -> float:
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _stats(times: list[float]) -> dict[str, float]:
    s = sorted(times)
    return {"latency_median_s": statistics.median(s), "latency_q25_s": _quantile(s, 0.25),
            "latency_q75_s": _quantile(s, 0.75), "latency_min_s": s[0], "latency_max_s": s[-1],
            "latency_mean_s": statistics.fmean(s)}


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


class _MemoryProbe:
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


def _loss(out: dict[str, torch.Tensor], target: torch.Tensor, num_classes: int) -> torch.Tensor:
    loss = F.cross_entropy(out["out"].float(), target)
    if out.get("aux") is not None:
        loss = loss + 0.2 * F.cross_entropy(out["aux"].float(), target)
    if out.get("se") is not None:
        present = torch.zeros(target.shape[0], num_classes, device=target.device)
        present.scatter_(1, target.flatten(1), 1.0)
        loss = loss + 0.2 * F.binary_cross_entropy_with_logits(out["se"].float(), present)
    return loss


def _prepare(spec: ModelSpec, opts: BenchOptions, batch: int) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(opts.seed)
    model = build_spec_model(spec, opts).to(opts.device)
    calibrate_bn(model, min(opts.size, _CALIBRATION_SIZE), seed=opts.seed)
    x = synthetic_images(batch, opts.size, opts.seed).to(opts.device)
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return model, x


def measure(spec: ModelSpec, opts: BenchOptions, mode: str = "inference", isolated: bool = False) -> dict[str, Any]:
    """Time one model in this process (``mode``: ``inference`` or ``train``); returns one result dict."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    opts = opts.validated()
    old_threads = torch.get_num_threads()
    if opts.threads is not None:
        torch.set_num_threads(opts.threads)
    old_bench = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = opts.cudnn_benchmark
    start = time.perf_counter()
    try:
        batch = opts.batch if mode == "inference" else opts.train_batch
        model, x = _prepare(spec, opts, batch)
        fn = torch.compile(model) if opts.compile else model
        probe = _MemoryProbe(opts.device, isolated)
        if mode == "inference":
            model.eval()

            def step() -> Any:
                with torch.inference_mode(), _autocast(opts):
                    return fn(x)["out"]
        else:
            model.train()
            gen = torch.Generator().manual_seed(opts.seed + 2)
            target = torch.randint(0, opts.num_classes, (batch, opts.size, opts.size), generator=gen).to(opts.device)
            optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
            scaler = torch.amp.GradScaler("cuda", enabled=opts.dtype == "fp16")

            def step() -> Any:
                optimizer.zero_grad(set_to_none=True)
                with _autocast(opts):
                    out = fn(x)
                loss = _loss(out, target, opts.num_classes)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                return loss

        warmup = opts.warmup
        if opts.compile:  # compilation happens on the first call: keep it out of the peak memory
            step()
            _sync(opts.device)
            warmup = max(warmup - 1, 0)
        probe.start()
        times = _time_calls(step, opts.runs, warmup, opts.device)
        memory = probe.stop()
        unsynced = None
        if opts.official_fps and mode == "inference":
            total = _time_unsynchronised(step, opts.runs, 0)
            _sync(opts.device)
            unsynced = opts.runs * batch / total
        result = {
            **_spec_fields(spec), "mode": mode, "batch": batch, "size": opts.size, "device": opts.device,
            "dtype": opts.dtype, "channels_last": opts.channels_last, "compile": opts.compile, "aux": opts.aux,
            "threads": torch.get_num_threads(), "runs": opts.runs, "warmup": opts.warmup,
            **_stats(times), "fps": batch / statistics.median(times), "fps_unsynchronised": unsynced,
            **memory, "isolated": isolated, "times_s": times,
        }
        result["wall_s"] = time.perf_counter() - start
        return result
    finally:
        torch.set_num_threads(old_threads)
        torch.backends.cudnn.benchmark = old_bench


def _spec_fields(spec: ModelSpec) -> dict[str, Any]:
    return {"name": spec.name, "kind": spec.kind, "head": spec.head, "backbone": spec.backbone,
            "upsampling": spec.upsampling, "paper_backbone": spec.paper_backbone,
            "dilated_backbone": spec.dilated_backbone, "output_stride": spec.output_stride}


def _run_worker(task: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """Run one task (``measure`` or ``fast_path``) in a fresh Python process; returns its result."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else root
    proc = subprocess.run([sys.executable, "-c", "from fastfcn.bench import _worker_main; _worker_main()"],
                          input=json.dumps(task), capture_output=True, text=True, env=env, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark worker failed (exit {proc.returncode}) for {task['spec'].get('name')}:\n"
                           f"{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(_RESULT_MARK):])


def _worker_main() -> None:
    task = json.loads(sys.stdin.read())
    spec = ModelSpec(**task["spec"])
    opts = BenchOptions(**task["options"])
    if task["what"] == "measure":
        result = measure(spec, opts, task["mode"], isolated=True)
    else:
        from .fast_path import _run_in_process

        result = _run_in_process(spec, opts, task["variants"], task.get("weights"), task["images"])
    sys.stdout.write(_RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def run_benchmark(specs: Sequence[ModelSpec], opts: BenchOptions, modes: Iterable[str] = ("inference",),
                  progress: bool = False) -> list[dict[str, Any]]:
    """Measure every spec in every mode; results are annotated with the paper's numbers and ratios."""
    opts = opts.validated()
    modes = _check_choices("mode", modes, MODES) or []
    if not modes:
        raise ValueError("no mode to measure; choose from inference, train")
    results = []
    for i, spec in enumerate(specs):
        cx = model_complexity(spec, opts)
        for mode in modes:
            if progress:
                print(f"[{i + 1}/{len(specs)}] {spec.name} {spec.backbone} {mode} ...", file=sys.stderr, flush=True)
            if opts.isolate:
                r = _run_worker({"what": "measure", "spec": asdict(spec), "options": asdict(opts), "mode": mode})
            else:
                r = measure(spec, opts, mode)
            results.append({**r, **cx})
    return annotate(results)


def annotate(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add the paper's FPS and ratio, our ratio to the dilated baseline, and the official CPU latency."""
    by_key = {(r["head"], r["backbone"], r["upsampling"], r["mode"], r["size"], r["batch"], r["dtype"]): r
              for r in results if r["kind"] == "fastfcn" and not r["dilated_backbone"]}
    for r in results:
        spec = ModelSpec(r["kind"], r["name"], r["head"], r["backbone"], r["upsampling"], r["paper_backbone"],
                         r["dilated_backbone"])
        row = spec.paper_row
        r["paper_fps"] = row.fps if row else None
        r["paper_ratio"] = (paper.table2_ratio(r["head"], r["paper_backbone"], r["upsampling"]) if row else None)
        base = by_key.get((r["head"], r["backbone"], "none", r["mode"], r["size"], r["batch"], r["dtype"]))
        r["ratio"] = (r["fps"] / base["fps"]) if (base and r["kind"] == "fastfcn") else None
        official = None
        if (r["kind"] == "fastfcn" and not r["dilated_backbone"] and r["device"] == "cpu" and r["size"] == 512
                and r["batch"] == 1 and r["mode"] == "inference" and r["dtype"] == "fp32" and r["aux"]
                and r["backbone"] == (r["paper_backbone"] or "") + "s"):
            official = paper.OFFICIAL_CPU_LATENCY.get((r["head"], r["paper_backbone"]), {}).get(r["upsampling"])
        r["official_cpu_latency_s"] = official
    return results


# --------------------------------------------------------------------------------------------------
# training memory


def training_memory_fit(spec: ModelSpec, opts: BenchOptions, batches: tuple[int, int] = (1, 2),
                        budget_bytes: int = TITAN_XP_BYTES) -> dict[str, Any]:
    """Bytes autograd saves for backward at two batch sizes, the linear fit, and the largest batch
    whose saved tensors plus weights, gradients and momentum (3 x fp32 parameters) fit ``budget_bytes``.

    An upper bound: backward's temporaries, workspaces and the CUDA context are not counted.
    """
    from .complexity import _saved_for_backward_bytes

    opts = opts.validated()
    torch.manual_seed(opts.seed)
    model = build_spec_model(spec, opts).to(opts.device)
    saved = {}
    for b in batches:
        x = torch.randn(b, 3, opts.size, opts.size, device=opts.device)
        try:
            saved[b] = _saved_for_backward_bytes(model, x)
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
    return {**_spec_fields(spec), "size": opts.size, "saved_bytes": saved, "per_image_bytes": per_image,
            "fixed_bytes": fixed, "other_fixed_bytes": other_fixed, "params": params, "state_bytes": state,
            "budget_bytes": budget_bytes, "max_batch": max_batch}


# --------------------------------------------------------------------------------------------------
# environment, output


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return sorted(f for f in flags if f.startswith(("avx512f", "avx512_bf16", "amx", "avx2")))
    return []


def environment(device: str = "cpu") -> dict[str, Any]:
    """Where a benchmark ran: device, versions, threads, CPU model (no hostname)."""
    import torchvision

    env = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device,
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else _cpu_model(),
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "platform": platform.platform(),
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(device)
        env["gpu_memory_bytes"] = props.total_memory
    return env


_CSV_FIELDS = ["name", "kind", "head", "backbone", "upsampling", "paper_backbone", "dilated_backbone",
               "output_stride", "mode", "batch", "size", "device", "dtype", "channels_last", "compile", "aux",
               "threads", "runs", "warmup", "params", "gmacs", "activation_bytes", "latency_median_s",
               "latency_q25_s", "latency_q75_s", "latency_min_s", "latency_max_s", "latency_mean_s", "fps",
               "fps_unsynchronised", "peak_mem_bytes", "peak_total_bytes", "baseline_bytes", "memory_method",
               "isolated", "paper_fps", "ratio", "paper_ratio", "official_cpu_latency_s", "wall_s"]


def write_csv(results: Sequence[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=_CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in results:
            w.writerow(r)
    return path


def write_json(path: str | Path, results: Sequence[dict[str, Any]], opts: BenchOptions,
               extra: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"environment": environment(opts.device), "options": asdict(opts), "results": list(results),
           **(extra or {})}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def load_json(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def gpu_result_files(results_dir: str | Path = RESULTS_DIR) -> list[Path]:
    """``bench_gpu_*.json`` files under ``book/results`` (written by ``fastfcn bench --device cuda``)."""
    return sorted(Path(results_dir).glob("bench_gpu_*.json"))


def default_output_name(device: str, env: dict[str, Any] | None = None) -> str:
    kind = "gpu" if device.startswith("cuda") else "cpu"
    name = (env or {}).get("device_name") or (torch.cuda.get_device_name(device) if kind == "gpu" else _cpu_model())
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "unknown"
    return f"bench_{kind}_{slug}"


def _fmt(value: Any, spec: str, missing: str = "-") -> str:
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
            f"{r['fps']:>6.2f} {_fmt(mem, '8.0f'):>8} {_fmt(r.get('ratio'), '9.2f'):>9} "
            f"{_fmt(r.get('paper_fps'), '9.2f'):>9} {_fmt(r.get('paper_ratio'), '7.2f'):>7} "
            f"{_fmt(r.get('official_cpu_latency_s'), '12.2f'):>12}")
    lines.append("paper FPS: Titan-Xp, 512x512, mean of 100 runs (the paper's Table 2). x dilated: FPS / FPS of the "
                 "same head and backbone without upsampling (ours and the paper's). offic. CPU s: the official "
                 "implementation's latency on a 2-core CPU as measured by this project (not in the paper).")
    return "\n".join(lines)
