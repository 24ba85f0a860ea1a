"""How fast is FastFCN? Latency, FPS and peak memory of the paper's Table 2 configurations.

Every row of Table 2 (EncNet/ASPP/PSP heads on ResNet-50/101, with no upsampling -- the dilated,
output-stride-8 baseline -- or bilinear/FPN/JPU on a plain output-stride-32 backbone), plus
torchvision's dilated ``deeplabv3_resnet50/101`` and ``fcn_resnet50``, is measured the same way
(:mod:`~fastfcn.benchmark.specs` says what, :mod:`~fastfcn.benchmark.models` how the models are built):

* **Latency.** ``warmup`` untimed calls, then ``runs`` timed calls (:func:`fastfcn.utils.timing.time_calls`);
  on CUDA the device is synchronised before and after each call. We report the median, the quartiles and
  min/max; ``fps = batch / median``. ``official_fps=True`` also times the loop the way the official FPS
  script does, without synchronising the device: on a GPU that measures how fast the host queues the work
  (until the queue fills up), not how fast the GPU finishes it; on the CPU it is the same measurement.
  On CUDA each model is also timed with CUDA events recorded around each call (``fps_cuda_events``):
  the GPU's own clock, without the host's launch and synchronisation overhead.
  With ``compile=True`` the first call (compilation) is untimed and outside the peak memory.
* **Peak memory.** See :mod:`fastfcn.benchmark.memory`; ``isolate=True`` runs each measurement in a
  fresh Python process (:mod:`fastfcn.benchmark.worker`), which the CPU peak needs.
* **Training step.** forward + the training loss (:class:`fastfcn.training.losses.SegmentationLoss` with
  the head's aux weight and the 0.2 SE weight) + backward + SGD step (momentum 0.9), model in training
  mode, batch ``train_batch`` (>= 2: pooled branches have one value per image and BatchNorm needs two).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, replace
from typing import Any

import torch

from .. import paper
from ..training.losses import SegmentationLoss, default_aux_weight
from ..utils.device import autocast, synchronize
from ..utils.threads import limited_threads
from ..utils.timing import latency_stats, time_calls, time_unsynchronised
from .memory import MemoryProbe
from .models import model_complexity, prepare_model
from .options import MODES, BenchOptions
from .rounds import inference_step, timed_in_rounds, times_in_rounds_isolated
from .specs import ModelSpec, check_choices, spec_fields
from .worker import run_in_subprocess

__all__ = ["measure", "measure_isolated", "run_benchmark", "annotate"]

def measure(spec: ModelSpec, opts: BenchOptions, mode: str = "inference", isolated: bool = False) -> dict[str, Any]:
    """Time one model in this process (``mode``: ``inference`` or ``train``); returns one result dict."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    opts = opts.validated()
    old_bench = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = opts.cudnn_benchmark
    try:
        with limited_threads(opts.threads):
            return _measure(spec, opts, mode, isolated)
    finally:
        torch.backends.cudnn.benchmark = old_bench


def _measure(spec: ModelSpec, opts: BenchOptions, mode: str, isolated: bool) -> dict[str, Any]:
    """:func:`measure` under the options' thread count and cuDNN setting."""
    start = time.perf_counter()
    batch = opts.batch if mode == "inference" else opts.train_batch
    model, x = prepare_model(spec, opts, batch)
    fn = torch.compile(model) if opts.compile else model
    probe = MemoryProbe(opts.device, isolated)
    step = inference_step(model, fn, x, opts) if mode == "inference" else _training_step(model, fn, x, spec, opts)
    warmup = opts.warmup
    # compilation, and cuDNN's algorithm search (it tries workspaces of up to the whole card), happen on
    # the first call: keep them out of the peak memory
    if opts.compile or (opts.is_cuda and opts.cudnn_benchmark):
        step()
        synchronize(opts.device)
        warmup = max(warmup - 1, 0)
    probe.start()
    times = time_calls(step, opts.runs, warmup, opts.device)
    memory = probe.stop()
    unsynced = None
    if opts.official_fps and mode == "inference":
        total = time_unsynchronised(step, opts.runs, 0)
        synchronize(opts.device)
        unsynced = opts.runs * batch / total
    events = _cuda_event_times(step, opts.runs) if opts.is_cuda else None
    result = {
        **spec_fields(spec), "mode": mode, "batch": batch, "size": opts.size, "device": opts.device,
        "dtype": opts.dtype, "channels_last": opts.channels_last, "compile": opts.compile, "aux": opts.aux,
        "threads": torch.get_num_threads(), "runs": opts.runs, "warmup": opts.warmup,
        **latency_stats(times), "fps": batch / statistics.median(times), "fps_unsynchronised": unsynced,
        "latency_cuda_events_median_s": statistics.median(events) if events else None,
        "fps_cuda_events": batch / statistics.median(events) if events else None,
        **memory, "isolated": isolated, "times_s": times,
    }
    result["wall_s"] = time.perf_counter() - start
    return result


def _training_step(model: torch.nn.Module, fn: Callable, x: torch.Tensor, spec: ModelSpec, opts: BenchOptions
                   ) -> Callable[[], Any]:
    """One timed call of training mode: forward, the training loss on random labels, backward, an SGD step."""
    model.train()
    gen = torch.Generator().manual_seed(opts.seed + 2)
    target = torch.randint(0, opts.num_classes, (x.shape[0], opts.size, opts.size), generator=gen).to(opts.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=opts.dtype == "fp16")
    criterion = SegmentationLoss(opts.num_classes, aux_weight=default_aux_weight(spec.head or "fcn"))

    def step() -> Any:
        optimizer.zero_grad(set_to_none=True)
        with autocast(opts.device, opts.dtype):
            out = fn(x)
        loss = criterion(out, target)[0]
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss

    return step


def _cuda_event_times(step: Any, runs: int) -> list[float]:
    """Seconds of each of ``runs`` calls between two CUDA events recorded around it (the GPU's clock)."""
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()  # one call at a time, as the synchronised timing: no overlap between calls
        times.append(start.elapsed_time(end) / 1e3)
    return times


def measure_isolated(spec: dict[str, Any], opts: dict[str, Any], mode: str) -> dict[str, Any]:
    """:func:`measure` from JSON-able arguments, in a process of its own (the worker's entry)."""
    return measure(ModelSpec(**spec), BenchOptions(**opts), mode, isolated=True)


def run_benchmark(specs: Sequence[ModelSpec], opts: BenchOptions, modes: Iterable[str] = ("inference",),
                  progress: bool = False) -> list[dict[str, Any]]:
    """Measure every spec in every mode; results are annotated with the paper's numbers and ratios.

    On the CPU, several models' inference latencies are timed in rounds, one call of every model per round
    (:mod:`fastfcn.benchmark.rounds`: a slow stretch of the machine then favours none of them); each model's
    peak memory still comes from a measurement of its own (one call, in a fresh process with ``isolate``).
    """
    opts = opts.validated()
    modes = check_choices("mode", modes, MODES) or []
    if not modes:
        raise ValueError("no mode to measure; choose from inference, train")
    in_rounds = timed_in_rounds(len(specs), opts)
    results = []
    for i, spec in enumerate(specs):
        cx = model_complexity(spec, opts)
        for mode in modes:
            if progress:
                print(f"[{i + 1}/{len(specs)}] {spec.name} {spec.backbone} {mode} ...", file=sys.stderr, flush=True)
            # timed in rounds below: here only the memory (and the row's other fields), from one call
            latency_later = in_rounds and mode == "inference"
            o = replace(opts, runs=1, warmup=0, official_fps=False) if latency_later else opts
            if o.isolate:
                r = run_in_subprocess("fastfcn.benchmark.measure:measure_isolated",
                                      {"spec": asdict(spec), "opts": asdict(o), "mode": mode}, what=spec.name)
            else:
                r = measure(spec, o, mode)
            results.append({**r, **cx, "timing": "rounds" if latency_later else "consecutive"})
    if in_rounds and "inference" in modes:
        if progress:
            print(f"timing the {len(specs)} models in {opts.runs} rounds ...", file=sys.stderr, flush=True)
        rows = [r for r in results if r["mode"] == "inference"]
        for row, times in zip(rows, times_in_rounds_isolated(specs, opts), strict=True):
            _set_times(row, times, opts)
    return annotate(results)


def _set_times(row: dict[str, Any], times: list[float], opts: BenchOptions) -> None:
    """A row's latency figures from the calls timed in rounds."""
    row.update(latency_stats(times), fps=row["batch"] / statistics.median(times), times_s=times, runs=opts.runs,
               warmup=opts.warmup)
    if opts.official_fps:  # on the CPU the official script's unsynchronised loop times the same calls
        row["fps_unsynchronised"] = len(times) * row["batch"] / sum(times)


def annotate(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add the paper's FPS and ratio, our ratio to the dilated baseline, and the official CPU latency (on a CPU of
    the kind it was measured on)."""
    # the official latencies belong to the kind of CPU they were measured on (fastfcn.paper)
    same_cpu = torch.backends.cpu.get_cpu_capability() == paper.OFFICIAL_CPU_CAPABILITY
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
        if (same_cpu and r["kind"] == "fastfcn" and not r["dilated_backbone"] and r["device"] == "cpu" and r["size"] == 512
                and r["batch"] == 1 and r["mode"] == "inference" and r["dtype"] == "fp32" and r["aux"]
                and r["backbone"] == (r["paper_backbone"] or "") + "s"):
            official = paper.OFFICIAL_CPU_LATENCY.get((r["head"], r["paper_backbone"]), {}).get(r["upsampling"])
        r["official_cpu_latency_s"] = official
    return results
