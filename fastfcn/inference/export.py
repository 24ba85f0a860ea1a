"""``fastfcn export``: a checkpoint as an ONNX graph that has checked itself.

The graph (:func:`fastfcn.inference.runtimes.export_onnx`: main output only, free batch, height and
width) is run by ONNX Runtime on procedural validation scenes, square and not, beside our eager model;
the largest difference of the logits and the share of labels that agree are reported, and an export
outside the tolerances is not written. The graph records the checkpoint's digest and model configuration
(ONNX ``metadata_props``), which ``predict``/``eval --onnx`` check before running it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import model_from_checkpoint
from ..data.procedural import validation_scenes
from .runtimes import MainOutput, OnnxRuntimeModel, export_onnx, graph_metadata, require

__all__ = ["MAX_ABS_DIFF", "MIN_AGREEMENT", "check_export", "export_checkpoint"]

MAX_ABS_DIFF = 1e-3   # logits are of order 10; fp32 graphs that compute the same function differ by ~1e-5
MIN_AGREEMENT = 0.999  # labels may flip only where two classes' scores are within rounding of each other


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


def export_checkpoint(checkpoint: str | Path, out: str | Path, images: int = 3, size: int | None = None,
                      max_abs_diff: float = MAX_ABS_DIFF, min_agreement: float = MIN_AGREEMENT) -> dict[str, Any]:
    """Export ``checkpoint`` to ``out`` (ONNX) after :func:`check_export` passed; raise ``RuntimeError``
    (and write nothing) when the logits differ by more than ``max_abs_diff`` or fewer than
    ``min_agreement`` of the labels agree. ``size``: the check images' side (default: the training image
    size of a procedural checkpoint, else 256)."""
    require("onnxruntime", "the export's check")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model, ckpt = model_from_checkpoint(checkpoint)
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
        trial.replace(out)
    return report
