"""The fast inference path measured: what each variant gains, and the labels it changes.

The variants are those of :mod:`fastfcn.inference.fast_path` (built there by ``optimize``). Every
variant runs the same weights on the same images as the reference, fp32 eager, and is judged on two numbers: its
speed-up (median latency of fp32 eager / its own) and the share of pixels whose predicted label
(argmax over classes) differs from the reference's. A variant *counts* when at least 99.9 % of the
labels agree.

What the label comparison means depends on the weights. With a trained checkpoint the images are
scenes of the offline procedural validation set (:func:`comparison_images`), the kind of input the
weights were trained on. Random weights have nearly tied class scores, so tiny perturbations flip
many labels; the measure ``input_rounding_changed_fraction`` (labels changed in fp32 when only the
input is rounded to bf16) says how sensitive the weights are, and when it alone exceeds 0.1 % the
reduced-precision variants cannot be judged on them.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import model_from_checkpoint
from ..data.procedural import validation_scenes
from ..inference.exact_path import EXACT_CANDIDATES, network_key, record_compile, record_exact
from ..inference.fast_path import default_variants, optimize, parse_variant
from ..inference.quantize import calibration_images, quantize_graph
from ..inference.runtimes import export_onnx
from ..utils.device import exact_fp32, synchronize
from ..utils.threads import limited_threads
from ..utils.timing import latency_stats, time_calls
from .compile_cost import compile_payoff, format_compile_payoff
from .models import prepare_model
from .options import BenchOptions
from .report import DEFAULT_RESULTS_DIR
from .specs import ModelSpec, spec_fields
from .worker import run_in_subprocess

__all__ = ["AGREEMENT_THRESHOLD", "comparison_images", "label_boundary", "measure_variants", "fast_path",
           "result_files", "checkpoint_info", "describe_measurement", "format_fast_path"]

AGREEMENT_THRESHOLD = 0.999

BENCH_CALIBRATION_IMAGES = 4  # at the measured size (512 px in the quick profile, where each costs seconds)


def comparison_images(count: int, size: int, seed: int = 0) -> torch.Tensor:
    """The first ``count`` scenes of the procedural validation set, rendered at ``size`` x ``size``
    and normalised with MEAN/STD: a float tensor ``[count, 3, size, size]``."""
    return validation_scenes(count, size, seed)


def _check_images(count: Any) -> None:
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"the label comparison needs at least one image, got images={count!r}")


def label_boundary(labels: torch.Tensor) -> torch.Tensor:
    """Pixels whose 3x3 neighbourhood holds more than one label ([N, H, W] -> bool [N, H, W])."""
    x = labels[:, None].float()
    high = F.max_pool2d(x, 3, stride=1, padding=1)
    low = -F.max_pool2d(-x, 3, stride=1, padding=1)
    return (high != low)[:, 0]


def _load(spec: ModelSpec, opts: BenchOptions, weights: str | None) -> tuple[nn.Module, ModelSpec, dict | None]:
    """The model, its spec and, for a checkpoint, what it is (configuration, data, training progress)."""
    if weights is None:
        model, _ = prepare_model(spec, opts, 1)
        return model.eval(), spec, None
    model, ckpt = model_from_checkpoint(weights)
    cfg = ckpt["config"]
    spec = ModelSpec("fastfcn", f"{cfg['head']}/{cfg['upsampling']}", cfg["head"], cfg["backbone"],
                     cfg["upsampling"], spec.paper_backbone)
    return model.to(opts.device).eval(), spec, checkpoint_info(ckpt)


def checkpoint_info(ckpt: dict[str, Any]) -> dict[str, Any]:
    """What a loaded checkpoint is: configuration, data, training progress and validation scores
    (what :func:`describe_measurement` prints as ``weights_info``)."""
    val = (ckpt.get("metrics") or {}).get("val") or {}
    return {"config": ckpt["config"], "dataset": ckpt.get("dataset"), "iteration": ckpt.get("iteration"),
            "image_size": (ckpt.get("train_config") or {}).get("image_size"),
            "val_pixAcc": val.get("pixAcc"), "val_mIoU": val.get("mIoU"), "val_images": val.get("images")}


def measure_variants(spec: ModelSpec, opts: BenchOptions, variants: list[str], weights: str | None,
                     images: int) -> dict[str, Any]:
    """The measurement of :func:`fast_path`, in this process."""
    opts = opts.validated()
    with limited_threads(opts.threads):
        return _measure_variants(spec, opts, variants, weights, images)


@dataclass
class _Reference:
    """What every variant is judged against: fp32 eager's labels on the comparison scenes."""

    scenes: torch.Tensor  # the comparison images, one forward each
    timing_input: torch.Tensor  # the first scene repeated to the batch size: the latency's input
    labels: torch.Tensor  # fp32 eager's argmax on every scene, [N, H, W]
    boundary: torch.Tensor  # the pixels on a boundary between two of those labels
    noise_floor: float  # labels changed in fp32 by rounding only the input to bf16


def _reference(model: nn.Module, scenes: torch.Tensor, batch: int) -> _Reference:
    # in true float32 on a GPU too: PyTorch lets cuDNN convolve in TF32 by default, and a reference in TF32
    # would count a variant's differences against a rounded network
    with torch.inference_mode(), exact_fp32():
        # how sensitive the weights are: labels changed in fp32 by rounding only the input to bf16
        labels = torch.cat([model(x[None])["out"].argmax(1) for x in scenes])
        rounded = torch.cat([model(x[None].to(torch.bfloat16).to(x.dtype))["out"].argmax(1) for x in scenes])
    return _Reference(scenes, scenes[:1].expand(batch, -1, -1, -1).contiguous(), labels, label_boundary(labels),
                      float((labels != rounded).float().mean()))


def _variant_forward(model: nn.Module, name: str, runtime: str, example: torch.Tensor, onnx_path: Path | None):
    """Variant ``name`` of ``model`` built by ``optimize``, as a function from images to logits."""
    fast = optimize(model, name, example=example, onnx_path=onnx_path if runtime != "torch" else None)

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return fast(x)["out"]

    return forward


def _graphs(model: nn.Module, parsed: list[dict[str, Any]], folder: Path, size: int) -> dict[bool, Path]:
    """The graphs the other runtimes' variants run, made once for all of them: ``{False: fp32, True: int8}``
    (each only when a variant needs it). The int8 graph is calibrated on procedural training scenes at the
    measured size: random weights amplify the rounding so much that ranges measured at another size (the
    Encoding layer sums over the pixels) change most labels; trained weights do not care (chapter 6)."""
    graphs: dict[bool, Path] = {}
    if any(v["runtime"] != "torch" for v in parsed):
        graphs[False] = export_onnx(model, folder / "model.onnx")
    if any(v["dtype"] == "int8" for v in parsed):
        images = calibration_images(BENCH_CALIBRATION_IMAGES, size)
        graphs[True] = quantize_graph(graphs[False], folder / "int8.onnx", images)
    return graphs


def _label_row(name: str, variant: dict[str, Any], forward, ref: _Reference, device: str) -> dict[str, Any]:
    """The variant's first call (compilation included) and how its labels differ from the reference's."""
    t0 = time.perf_counter()
    out = forward(ref.timing_input)  # first call: compilation for compiled variants
    synchronize(device)
    first = time.perf_counter() - t0
    # at batch 1 the timing input is the first scene itself: its labels need no second forward
    reuse = ref.timing_input.shape[0] == 1
    labels = torch.cat([out.argmax(1)] * reuse + [forward(x[None]).argmax(1) for x in ref.scenes[int(reuse):]])
    changed = labels != ref.labels
    per_image = 1.0 - changed.flatten(1).float().mean(1)
    n_changed = int(changed.sum())
    return {"variant": name, **variant, "first_call_s": first,
            "agreement": float(1.0 - changed.float().mean()),
            "changed_fraction": float(changed.float().mean()),
            "worst_image_agreement": float(per_image.min()),
            "changed_on_boundary_fraction": (float((changed & ref.boundary).sum()) / n_changed
                                             if n_changed else None)}


def _time_round_robin(forwards: list, timing_input: torch.Tensor, opts: BenchOptions) -> list[list[float]]:
    """Latencies of each forward: one call of each per round, so that a machine whose speed drifts during the
    measurement (other work, heat) biases no variant against another."""
    times: list[list[float]] = [[] for _ in forwards]
    for round_ in range(max(opts.warmup - 1, 0) + opts.runs):
        for i, forward in enumerate(forwards):
            t = time_calls(lambda f=forward: f(timing_input), 1, 0, opts.device)[0]
            if round_ >= max(opts.warmup - 1, 0):
                times[i].append(t)
    return times


def _winners(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Speed-ups over fp32 eager (the first row), which rows count, the fastest that counts and the fastest."""
    if rows[0]["variant"] != "fp32":
        raise ValueError(f"the first fast-path variant must be 'fp32' (the reference), got {rows[0]['variant']!r}")
    base = rows[0]["latency_median_s"]
    for r in rows:
        r["speedup"] = base / r["latency_median_s"]
        r["counts"] = r["agreement"] >= AGREEMENT_THRESHOLD
    best = min((r for r in rows if r["counts"]), key=lambda r: r["latency_median_s"])
    fastest = min(rows, key=lambda r: r["latency_median_s"])
    return {"best_variant": best["variant"], "best_speedup": best["speedup"], "best_agreement": best["agreement"],
            "agreement_threshold": AGREEMENT_THRESHOLD, "fastest_variant": fastest["variant"],
            "fastest_speedup": fastest["speedup"], "fastest_agreement": fastest["agreement"]}


def _exact_winners(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Which rows compute in fp32 throughout, and the fastest of them (that counts; in PyTorch)."""
    for r in rows:  # fp32 arithmetic throughout (OpenVINO without a hint picks its own precision)
        r["exact"] = r["dtype"] == "fp32" and (r["runtime"] != "openvino" or r["dtype_given"])
    exact = min((r for r in rows if r["exact"] and r["counts"]), key=lambda r: r["latency_median_s"])
    torch_best = min((r for r in rows if r["exact"] and r["runtime"] == "torch"), key=lambda r: r["latency_median_s"])
    return {"best_exact_variant": exact["variant"], "best_exact_speedup": exact["speedup"],
            "best_torch_exact_variant": torch_best["variant"], "best_torch_exact_speedup": torch_best["speedup"]}


def _measure_variants(spec: ModelSpec, opts: BenchOptions, variants: list[str], weights: str | None,
                      images: int) -> dict[str, Any]:
    """:func:`measure_variants` under the options' thread count."""
    plain = replace(opts, dtype="fp32", channels_last=False, compile=False)
    model, spec, weights_info = _load(spec, plain, weights)
    ref = _reference(model, comparison_images(images, opts.size, opts.seed).to(opts.device), opts.batch)
    rows, forwards = [], []
    torch._dynamo.reset()
    with tempfile.TemporaryDirectory(prefix="fastfcn-bench-") as onnx_dir:
        graphs = _graphs(model, [parse_variant(n, opts.device) for n in variants], Path(onnx_dir), opts.size)
        for name in variants:  # build each variant, compile it, and compare its labels
            v = parse_variant(name, opts.device)
            forward = _variant_forward(model, name, v["runtime"], ref.scenes[:1, :, :64, :64],
                                       graphs.get(v["dtype"] == "int8"))
            rows.append(_label_row(name, v, forward, ref, opts.device))
            forwards.append(forward)
        times = _time_round_robin(forwards, ref.timing_input, opts)
        del forwards  # the runtimes' sessions, before their folder goes
    for r, t in zip(rows, times, strict=True):
        r.update(latency_stats(t), times_s=t)
    winners, exact_winners = _winners(rows), _exact_winners(rows)
    return {**spec_fields(spec), "device": opts.device, "size": opts.size, "batch": opts.batch,
            "threads": torch.get_num_threads(), "runs": opts.runs, "warmup": opts.warmup,
            "weights": weights if weights is not None else "random (BatchNorm calibrated)",
            "weights_info": weights_info,
            "images": images, "comparison_images": (f"procedural val scene 0 at {opts.size}x{opts.size}" if images == 1 else
                                  f"procedural val scenes 0-{images - 1} at {opts.size}x{opts.size}"),
            "reference_classes": int(ref.labels.unique().numel()),
            "boundary_fraction": float(ref.boundary.float().mean()),
            "variants": rows, **winners, "input_rounding_changed_fraction": ref.noise_floor, **exact_winners,
            "agreement_resolvable": ref.noise_floor < 1.0 - AGREEMENT_THRESHOLD}


def fast_path(spec: ModelSpec, opts: BenchOptions, variants: Sequence[str] | None = None,
              weights: str | Path | None = None, images: int = 16) -> dict[str, Any]:
    """Time ``variants`` of inference against fp32 eager and count the labels each one changes.

    Latency: batch ``opts.batch`` of the first comparison image, ``opts.runs`` timed calls after
    ``opts.warmup`` (the first call, compilation included, is reported apart as ``first_call_s``),
    taken round-robin over the variants so that a drift in the machine's speed favours none.
    Labels: every variant predicts ``images`` procedural validation scenes at ``opts.size``;
    ``agreement`` is the share of all their pixels whose label equals fp32 eager's,
    ``worst_image_agreement`` the lowest share on one image, ``changed_on_boundary_fraction`` the
    share of changed pixels that lie on a boundary between two predicted classes.

    ``weights``: a fastfcn checkpoint (its configuration replaces ``spec``); by default random
    weights with BatchNorm calibrated. ``best_variant`` is the fastest variant that counts
    (agreement >= 99.9 %), ``fastest_variant`` the fastest of all.
    """
    opts = opts.validated()
    variants = list(variants) if variants is not None else default_variants(opts.device)
    if not variants or variants[0] != "fp32":
        variants = ["fp32"] + [v for v in variants if v != "fp32"]
    for v in variants:
        parse_variant(v, opts.device)
    _check_images(images)  # here too: before a worker process is started
    weights = None if weights is None else str(weights)
    if weights is not None and not Path(weights).is_file():
        raise FileNotFoundError(f"fast-path weights {weights!r} not found: pass a checkpoint written by "
                                "`fastfcn train` (its last.pth) or `fastfcn convert`")
    if opts.isolate:
        result = run_in_subprocess("fastfcn.benchmark.variants:measure_variants_isolated",
                                   {"spec": asdict(spec), "opts": asdict(opts), "variants": variants,
                                    "weights": weights, "images": images}, what="fast path")
    else:
        result = measure_variants(spec, opts, variants, weights, images)
    # the exact layout measured faster here becomes what the `exact` preset runs on this machine
    rows = {r["variant"]: r for r in result["variants"]}
    result["exact_recorded"] = None
    if all(v in rows and rows[v]["counts"] for v in EXACT_CANDIDATES):
        result["exact_recorded"] = record_exact({v: rows[v]["latency_median_s"] for v in EXACT_CANDIDATES},
                                                opts.device, source=f"fast path, {result['name']} "
                                                f"{result['backbone']} at {result['size']} px", threads=result["threads"])
    result["compile_recorded"] = _record_compile(result, opts.device)
    return result


def _record_compile(result: dict[str, Any], device: str) -> bool:
    """Record, for ``fastfcn eval/predict`` to decide by (:func:`fastfcn.inference.exact_path.compile_pays_off`),
    what compiling cost in this run against the fastest eager exact torch variant; False when nothing to record."""
    payoff = compile_payoff(result)
    eager = [a for a in (payoff or {}).get("against", []) if a["runtime"] == "torch"]
    if not eager or result.get("dilated_backbone"):
        return False
    return record_compile(network_key(result), result["size"], payoff["compile_s"], payoff["latency_s"],
                          eager[0]["latency_s"], eager[0]["variant"], device,
                          source=f"fast path, {result['name']} {result['backbone']} at {result['size']} px",
                          threads=result["threads"])


def measure_variants_isolated(spec: dict[str, Any], opts: dict[str, Any], variants: list[str], weights: str | None,
                              images: int) -> dict[str, Any]:
    """:func:`measure_variants` from JSON-able arguments (the worker's entry)."""
    return measure_variants(ModelSpec(**spec), BenchOptions(**opts), variants, weights, images)


def result_files(results_dir: str | Path | None = None) -> list[Path]:
    """Fast-path measurements on trained weights in ``results_dir`` (default ``book/results`` under the current
    folder): ``fast_path_*.json``, written by
    ``fastfcn bench --no-table --fast-path --fast-path-weights CKPT --name fast_path_<device>_<what>``."""
    return sorted(Path(results_dir or DEFAULT_RESULTS_DIR).glob("fast_path_*.json"))


def describe_measurement(doc: dict[str, Any], here: dict[str, Any] | None = None, key: str = "fast_path") -> str:
    """Where and on what a stored measurement was made: a ``result_files`` JSON, or another with the
    measurement under ``key`` (``"int8"``: ``scripts/int8_effect.py``).

    ``here``: this machine's :func:`fastfcn.utils.environment`, to say whether the CPU is the same.
    """
    env, fp = doc["environment"], doc[key]
    line = (f"{env['device_name']} ({env.get('cpu_count')} cores, {fp['threads']} threads),\n"
            f"  torch {env['torch']}, measured {env.get('created', '?')[:10]}")
    if here is not None:
        same = (env.get("device_name") == here.get("device_name") and env.get("cpu_count") == here.get("cpu_count"))
        line += " (the same CPU model as this machine)" if same else " (another machine than this one)"
    lines = [line]
    info = fp.get("weights_info") or {}
    if info:
        cfg = info["config"]
        text = (f"weights: {cfg['head']}+{cfg['upsampling']} {cfg['backbone']} "
                f"(JPU width {cfg.get('jpu_width')}),\n"
                f"  trained {info.get('iteration')} iterations on {info.get('dataset')} "
                f"at {info.get('image_size')} px")
        if info.get("val_mIoU") is not None:
            text += (f";\n  val mIoU {100 * info['val_mIoU']:.1f} %, pixAcc {100 * info['val_pixAcc']:.1f} % "
                     f"on {info.get('val_images')} images")
        lines.append(text)
    return "\n".join(lines)


def format_fast_path(fp: dict[str, Any]) -> str:
    """The fast-path result as a terminal table."""
    lines = [f"fast inference path: {fp['name']} {fp['backbone']} at {fp['size']}x{fp['size']}, batch {fp['batch']}, "
             f"{fp['device']};",
             f"  labels compared on {fp['comparison_images']} "
             f"({fp['reference_classes']} classes predicted by the reference)",
             f"{'variant':<46} {'median ms':>9} {'speed-up':>8} {'labels changed':>14} {'worst image':>11} "
             f"{'counts':>6}"]
    for v in fp["variants"]:
        lines.append(f"{v['variant']:<46} {v['latency_median_s'] * 1e3:>9.0f} {v['speedup']:>8.2f} "
                     f"{v['changed_fraction'] * 100:>13.3f}% {(1 - v['worst_image_agreement']) * 100:>10.3f}% "
                     f"{'yes' if v['counts'] else 'no':>6}")
    lines.append(f"best: {fp['best_variant']}\n  ({fp['best_speedup']:.2f}x over fp32 eager, "
                 f"{fp['best_agreement'] * 100:.3f}% of labels agree; a variant counts at >= "
                 f"{fp['agreement_threshold'] * 100:.1f}%)")
    if fp.get("exact_recorded"):
        lines.append("exact path on this machine (what `--runtime torch` and the `exact` preset run "
                     "from now on):\n"
                     f"  {fp['exact_recorded']}, the faster of {' and '.join(EXACT_CANDIDATES)} above")
    payoff = compile_payoff(fp)
    if payoff is not None:
        lines.append(format_compile_payoff(payoff))
    if fp.get("compile_recorded"):
        lines.append(f"recorded for this machine and {network_key(fp)}: `fastfcn eval/predict --mode slide`\n"
                     "  on the torch path compile by themselves where a run has the forwards to pay it off")
    lines.append(f"weights: {fp['weights']};\n  rounding only the input to bf16 changes "
                 f"{fp['input_rounding_changed_fraction'] * 100:.3f}% of the fp32 labels"
                 + ("" if fp["agreement_resolvable"] else
                    "\n  (over 0.1%: these weights are too sensitive to judge reduced precision)"))
    return "\n".join(lines)
