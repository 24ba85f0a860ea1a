"""int8 against fp32 on a trained checkpoint, measured in one run: labels, mIoU and speed.

The checkpoint is exported (fp32 graph) and quantized (:mod:`fastfcn.inference.quantize`: calibrated on
scenes of the procedural *training* split at the checkpoint's training size), with 8-bit and with 7-bit
weights. Every engine (our exact torch path, ONNX Runtime and OpenVINO in fp32, the int8 graphs in ONNX
Runtime and the 8-bit one in OpenVINO) then

* segments validation scenes at the training size: mIoU and pixel accuracy against the ground truth, and the
  share of labels that agree with ONNX Runtime fp32 (the reference: the same graph, unquantized);
* runs one scene at ``size`` x ``size`` (512 by default, the paper's test crop): latency, one call of each
  engine per round so that a drift of the machine's speed favours none; speed-ups are over ONNX Runtime fp32.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import model_from_checkpoint
from ..data.procedural import ProceduralScenes, validation_scenes
from ..data.transforms import normalize
from ..inference.fast_path import optimize
from ..inference.metrics import SegmentationMetric
from ..inference.quantize import calibration_images, has_vnni, quantize_graph
from ..inference.runtimes import OnnxRuntimeModel, OpenVinoModel, available, export_onnx, graph_metadata
from ..utils.environment import cpu_model
from ..utils.timing import time_calls
from .variants import checkpoint_info

__all__ = ["REFERENCE", "int8_effect", "result_files", "format_int8_effect", "int8_figures", "int8_verdict"]

REFERENCE = "onnxruntime fp32"


def _engines(model: torch.nn.Module, fp32: Path, int8: Path, int8_7bit: Path) -> dict[str, Any]:
    config = model.config
    engines: dict[str, Any] = {"torch exact (fp32)": optimize(model, "exact"),
                               REFERENCE: OnnxRuntimeModel(onnx_path=fp32, config=config),
                               "onnxruntime int8": OnnxRuntimeModel(onnx_path=int8, config=config),
                               "onnxruntime int8, 7-bit weights": OnnxRuntimeModel(onnx_path=int8_7bit, config=config)}
    if available("openvino"):
        engines["openvino fp32"] = OpenVinoModel(onnx_path=fp32, config=config, precision="fp32")
        engines["openvino int8"] = OpenVinoModel(onnx_path=int8, config=config, precision="fp32")
    return engines


def _scores(engines: dict[str, Any], images: int, size: int, num_classes: int, classes: list[str] | None
            ) -> dict[str, dict[str, float]]:
    scenes = ProceduralScenes("val", num_images=images, image_size=size)
    metrics = {name: SegmentationMetric(num_classes, classes) for name in engines}
    agree = dict.fromkeys(engines, 0)
    total = 0
    with torch.inference_mode():
        for i in range(images):
            rgb, mask = scenes.generate(i)
            x = normalize(torch.from_numpy(rgb).permute(2, 0, 1)[None])
            target = torch.from_numpy(np.asarray(mask)).long()[None]
            labels = {name: engine(x)["out"].argmax(1) for name, engine in engines.items()}
            for name, pred in labels.items():
                metrics[name].update_confusion(pred, target)
                agree[name] += int((pred == labels[REFERENCE]).sum())
            total += target.numel()
    out = {}
    for name, metric in metrics.items():
        s = metric.compute()
        out[name] = {"mIoU": s["mIoU"], "pixAcc": s["pixAcc"], "agreement": agree[name] / total}
    return out


def _latencies(engines: dict[str, Any], size: int, runs: int) -> dict[str, list[float]]:
    x = validation_scenes(1, size)
    times: dict[str, list[float]] = {name: [] for name in engines}
    with torch.inference_mode():
        for engine in engines.values():  # warm-up: first calls plan memory and pick kernels
            engine(x)
        for _ in range(runs):
            for name, engine in engines.items():
                times[name] += time_calls(lambda e=engine: e(x), 1, 0)
    return times


def int8_effect(checkpoint: str | Path, size: int = 512, calibration: int = 32, images: int = 20,
                runs: int = 5, seed: int = 0) -> dict[str, Any]:
    """Measure the int8 graphs of ``checkpoint`` against fp32 (see the module's docstring): ``calibration``
    training scenes, ``images`` validation scenes for the scores, ``runs`` timed rounds at ``size``."""
    for name, value in (("size", size), ("calibration", calibration), ("images", images), ("runs", runs)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not available("onnxruntime"):
        raise RuntimeError("the int8 measurement needs ONNX Runtime: pip install -e '.[deploy]'")
    model, ckpt = model_from_checkpoint(checkpoint)
    model.eval()
    train_size = int((ckpt.get("train_config") or {}).get("image_size") or 128)
    with tempfile.TemporaryDirectory(prefix="fastfcn-int8-") as tmp:
        fp32 = export_onnx(model, Path(tmp) / "fp32.onnx", metadata=graph_metadata(checkpoint, model))
        calib = calibration_images(calibration, train_size, seed)
        start = time.perf_counter()
        int8 = quantize_graph(fp32, Path(tmp) / "int8.onnx", calib)
        quantize_s = time.perf_counter() - start
        int8_7bit = quantize_graph(fp32, Path(tmp) / "int8_7bit.onnx", calib, reduce_range=True)
        sizes = {"fp32": fp32.stat().st_size, "int8": int8.stat().st_size}
        engines = _engines(model, fp32, int8, int8_7bit)
    scores = _scores(engines, images, train_size, model.config["num_classes"], ckpt.get("classes"))
    times = _latencies(engines, size, runs)
    ref = statistics.median(times[REFERENCE])
    rows = [{"engine": name, "latency_median_s": statistics.median(t), "latencies_s": t,
             "speedup": ref / statistics.median(t), **scores[name]} for name, t in times.items()]
    return {"checkpoint": str(checkpoint), "config": model.config, "weights_info": checkpoint_info(ckpt), "size": size, "eval_size": train_size,
            "calibration_images": calibration, "eval_images": images, "runs": runs, "quantize_s": quantize_s,
            "graph_bytes": sizes, "vnni": has_vnni(), "cpu": cpu_model(), "threads": torch.get_num_threads(),
            "reference": REFERENCE, "rows": rows}


def format_int8_effect(result: dict[str, Any]) -> str:
    """The measurement as a table: latency and speed-up, mIoU, pixel accuracy, labels agreeing."""
    lines = [f"int8 against fp32, {result['config'].get('head')}+{result['config'].get('upsampling')} "
             f"{result['config'].get('backbone')}: latency at {result['size']}x{result['size']} (median of "
             f"{result['runs']}),",
             f"  scores on {result['eval_images']} validation scenes at {result['eval_size']} px;",
             f"  calibrated on {result['calibration_images']} training scenes in "
             f"{result['quantize_s']:.0f} s; CPU {'with' if result['vnni'] else 'without'} VNNI, "
             f"{result['threads']} threads",
             f"{'engine':<33} {'ms':>7} {'vs ORT fp32':>12} {'mIoU %':>7} {'pixAcc %':>9} {'labels = fp32 %':>16}"]
    for r in result["rows"]:
        lines.append(f"{r['engine']:<33} {1000 * r['latency_median_s']:7.0f} {r['speedup']:11.2f}x "
                     f"{100 * r['mIoU']:7.2f} {100 * r['pixAcc']:9.2f} {100 * r['agreement']:16.3f}")
    return "\n".join(lines)


_INT8_OF = {"int8_ort": ("onnxruntime int8", REFERENCE), "int8_ort7": ("onnxruntime int8, 7-bit weights", REFERENCE),
            "int8_ov": ("openvino int8", "openvino fp32")}  # each int8 engine and the fp32 engine of its runtime


def result_files(results_dir: str | Path | None = None) -> list[Path]:
    """Stored int8 measurements in ``results_dir`` (default ``book/results``): ``int8_*.json``, written by
    ``python scripts/int8_effect.py CKPT --out book/results/int8_<device>_<what>.json``."""
    from .report import DEFAULT_RESULTS_DIR

    return sorted(Path(results_dir or DEFAULT_RESULTS_DIR).glob("int8_*.json"))


def int8_figures(result: dict[str, Any] | None) -> dict[str, tuple[float, str]]:
    """The chapter's figures, ``{name: (value, unit)}``: per int8 engine its speed-up over the fp32 engine of
    the same runtime, labels changed against ONNX Runtime fp32 and the change of mIoU and of pixel accuracy in
    points; our exact path against ONNX Runtime fp32. NaN where not measured (``result`` None, or an engine not
    installed)."""
    nan = float("nan")
    out: dict[str, tuple[float, str]] = {"int8_torch_vs_ort": (nan, "x"), "int8_ref_miou_pct": (nan, "%")}
    for key in _INT8_OF:
        out.update({f"{key}_speedup": (nan, "x"), f"{key}_changed_pct": (nan, "%"),
                    f"{key}_miou_change_pts": (nan, "points"), f"{key}_pixacc_change_pts": (nan, "points")})
    if result is None:
        return out
    rows = {r["engine"]: r for r in result["rows"]}
    ref = rows[REFERENCE]
    out["int8_torch_vs_ort"] = (round(rows["torch exact (fp32)"]["speedup"], 3), "x")
    out["int8_ref_miou_pct"] = (round(100 * ref["mIoU"], 2), "%")
    for key, (engine, fp32) in _INT8_OF.items():
        if engine in rows and fp32 in rows:
            r = rows[engine]
            out[f"{key}_speedup"] = (round(rows[fp32]["latency_median_s"] / r["latency_median_s"], 3), "x")
            out[f"{key}_changed_pct"] = (round(100 * (1 - r["agreement"]), 3), "%")
            out[f"{key}_miou_change_pts"] = (round(100 * (r["mIoU"] - ref["mIoU"]), 2), "points")
            out[f"{key}_pixacc_change_pts"] = (round(100 * (r["pixAcc"] - ref["pixAcc"]), 2), "points")
    return out


def int8_verdict(result: dict[str, Any] | None, max_miou_loss: float = 0.005, min_speedup: float = 1.15) -> str:
    """Whether int8 is worth it on the measured machine, from the numbers: the fastest int8 engine whose mIoU is
    within ``max_miou_loss`` of fp32 and that runs at least ``min_speedup`` times its runtime's fp32."""
    if result is None:
        return "int8 was not measured (no book/results/int8_*.json)"
    rows = {r["engine"]: r for r in result["rows"]}
    ref = rows[REFERENCE]
    good = [(rows[fp32]["latency_median_s"] / rows[e]["latency_median_s"], e) for e, fp32 in _INT8_OF.values()
            if e in rows and fp32 in rows and ref["mIoU"] - rows[e]["mIoU"] <= max_miou_loss]
    fast = [(s, e) for s, e in good if s >= min_speedup]
    where = f"on the {'VNNI' if result['vnni'] else 'non-VNNI'} CPU measured"
    if fast:
        s, e = max(fast)
        return (f"int8 is worth it {where}: {e} ran {s:.2f} times as fast as its fp32 graph, losing at most "
                f"{100 * max_miou_loss:g} points of mIoU")
    if good:
        s, e = max(good)
        return (f"int8 is not worth it {where}: the best int8 graph that kept the mIoU ({e}) ran only {s:.2f} times "
                f"as fast as fp32 (we ask for {min_speedup:g})")
    return (f"int8 is not worth it {where}: every int8 graph lost more than {100 * max_miou_loss:g} points of mIoU "
            "against fp32")
