"""``fastfcn export``: a checkpoint as an ONNX graph that has checked itself.

The graph (:func:`fastfcn.inference.runtimes.export_onnx`: main output only, free batch, height and
width) is run by ONNX Runtime on procedural validation scenes, square and not, beside our eager model;
the largest difference of the logits and the share of labels that agree are reported, and an export
outside the tolerances is not written. The graph records the checkpoint's digest and model configuration
(ONNX ``metadata_props``), which ``predict``/``eval --onnx`` check before running it.

``int8=True`` then quantizes the checked graph (:mod:`fastfcn.inference.quantize`), calibrated on the
checkpoint's training data: the procedural training scenes for a procedural checkpoint, else the user's
folder of training images. Rounding to 256 levels moves labels at class boundaries, so the int8 graph is
held to its own, looser share of agreeing labels, and the share is reported.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import model_from_checkpoint
from ..data.procedural import validation_scenes
from .quantize import CALIBRATION_IMAGES, calibration_from_folder, calibration_images, quantize_graph
from .runtimes import MainOutput, OnnxRuntimeModel, export_onnx, graph_metadata, require

__all__ = ["MAX_ABS_DIFF", "MIN_AGREEMENT", "INT8_MIN_AGREEMENT", "CALIBRATION_IMAGES", "check_export",
           "calibration_for", "export_checkpoint"]

MAX_ABS_DIFF = 1e-3   # logits are of order 10; fp32 graphs that compute the same function differ by ~1e-5
MIN_AGREEMENT = 0.999  # labels may flip only where two classes' scores are within rounding of each other
INT8_MIN_AGREEMENT = 0.95  # chapter 6: ~98 % on a trained EncNet+JPU; far below means a failed calibration


def check_export(model: torch.nn.Module, onnx_path: str | Path, images: int = 3, size: int = 128) -> dict[str, Any]:
    """Run ``onnx_path`` in ONNX Runtime and ``model`` (eager, fp32, main output) on ``images`` procedural
    scenes at ``size`` x ``size`` and on the first of them cropped to a 3:4 aspect (a size the export did not
    see): the largest absolute difference of the logits and the share of pixels whose labels agree."""
    engine = OnnxRuntimeModel(onnx_path=onnx_path, config=getattr(model, "config", None))
    scenes = validation_scenes(images, size)
    inputs = [x[None] for x in scenes] + [scenes[:1, :, :, : max(33, size * 3 // 4)]]
    diff, same, total = 0.0, 0, 0
    main = MainOutput(model.eval())
    with torch.inference_mode():
        for x in inputs:
            ref = main(x)
            got = engine(x)["out"]
            if got.shape != ref.shape:
                raise RuntimeError(f"the exported graph returned {tuple(got.shape)} for an input of "
                                   f"{tuple(x.shape)}, our model {tuple(ref.shape)}")
            diff = max(diff, float((got - ref).abs().max()))
            same += int((got.argmax(1) == ref.argmax(1)).sum())
            total += ref.shape[0] * ref.shape[-2] * ref.shape[-1]
    return {"max_abs_diff": diff, "agreement": same / total, "images": len(inputs),
            "sizes": [list(x.shape[-2:]) for x in inputs]}


def calibration_for(ckpt: dict[str, Any], count: int = CALIBRATION_IMAGES,
                    folder: str | Path | None = None) -> np.ndarray:
    """Calibration images for a checkpoint's int8 graph at its training crop size: ``folder``'s images when
    given, else the procedural training scenes of a procedural checkpoint; ``ValueError`` (one line) for a
    checkpoint trained on other data without ``folder``."""
    train = ckpt.get("train_config") or {}
    size = int(train.get("crop_size") or train.get("image_size") or 256)
    if folder is not None:
        return calibration_from_folder(folder, count, size)
    dataset = train.get("dataset") or ckpt.get("dataset") or "an unknown dataset"
    if dataset != "procedural":
        where = f" (it was trained on {train['root']})" if train.get("root") else ""
        raise ValueError(f"int8 is calibrated on the training data, and this checkpoint was trained on {dataset}"
                         f"{where}: pass --calibration-images DIR, a folder of its training images")
    return calibration_images(count, size)


def _quantize_checked(model: torch.nn.Module, fp32: Path, calibration: np.ndarray, images: int, size: int,
                      min_agreement: float) -> tuple[Path, dict[str, Any]]:
    """The int8 graph of ``fp32`` and its check against ``model``; ``RuntimeError`` below ``min_agreement``."""
    start = time.perf_counter()
    int8 = quantize_graph(fp32, fp32.with_name("int8.onnx"), calibration)
    seconds = time.perf_counter() - start
    report = check_export(model, int8, images=images, size=size)
    if report["agreement"] < min_agreement:
        raise RuntimeError(f"the int8 graph's labels agree with the model's on only {100 * report['agreement']:.2f} % "
                           f"of the pixels (needed {100 * min_agreement:g} %): calibrate on more or more typical "
                           "training images, or export without --int8")
    return int8, {"agreement": report["agreement"], "max_abs_diff": report["max_abs_diff"], "quantize_s": seconds,
                  "calibration_images": len(calibration), "min_agreement": min_agreement,
                  "bytes": int8.stat().st_size}


def export_checkpoint(checkpoint: str | Path, out: str | Path, images: int = 3, size: int | None = None,
                      max_abs_diff: float = MAX_ABS_DIFF, min_agreement: float = MIN_AGREEMENT, int8: bool = False,
                      calibration_folder: str | Path | None = None, calibration_count: int = CALIBRATION_IMAGES,
                      int8_min_agreement: float = INT8_MIN_AGREEMENT) -> dict[str, Any]:
    """Export ``checkpoint`` to ``out`` (ONNX) after :func:`check_export` passed; raise ``RuntimeError``
    (and write nothing) when the logits differ by more than ``max_abs_diff`` or fewer than
    ``min_agreement`` of the labels agree. ``size``: the check images' side (default: the training image
    size of a procedural checkpoint, else 256). ``int8``: write the checked graph quantized instead
    (:func:`calibration_for` ``calibration_count`` images, ``calibration_folder``), refused below
    ``int8_min_agreement``; the report's ``"int8"`` holds its check."""
    require("onnxruntime", "the export's check")
    out = Path(out)
    model, ckpt = model_from_checkpoint(checkpoint)
    calibration = calibration_for(ckpt, calibration_count, calibration_folder) if int8 else None
    out.parent.mkdir(parents=True, exist_ok=True)
    size = size or (ckpt.get("train_config") or {}).get("image_size") or 256
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fastfcn-export-", dir=out.parent) as tmp:
        trial = export_onnx(model, Path(tmp) / "model.onnx", metadata=graph_metadata(checkpoint, model))
        seconds = time.perf_counter() - start
        report = check_export(model, trial, images=images, size=size)
        report.update({"export_s": seconds, "max_abs_diff_allowed": max_abs_diff, "min_agreement": min_agreement,
                       "bytes": trial.stat().st_size, "out": str(out)})
        if report["max_abs_diff"] > max_abs_diff or report["agreement"] < min_agreement:
            raise RuntimeError(f"the exported graph differs from the model: logits by up to {report['max_abs_diff']:.3g} "
                               f"(allowed {max_abs_diff:g}), labels agree on {100 * report['agreement']:.4f} % "
                               f"(needed {100 * min_agreement:g} %); {out} was not written")
        if calibration is not None:
            trial, report["int8"] = _quantize_checked(model, trial, calibration, images, size, int8_min_agreement)
        trial.replace(out)
    return report
