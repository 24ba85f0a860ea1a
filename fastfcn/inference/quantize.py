"""int8: an exported graph quantized by ONNX Runtime's static quantization, calibrated on training scenes.

The weights of every convolution become int8, one scale per output channel; the activations between them
become uint8, with one scale per tensor measured (smallest and largest value) while the fp32 graph runs on
calibration images of the *training* data. The result is written in the QDQ form: a QuantizeLinear and
DequantizeLinear pair around each quantized tensor, which ONNX Runtime fuses into integer kernels and
OpenVINO reads as its own int8 graph, so one file serves both runtimes.

Integer arithmetic is exact; what changes the labels is the rounding of weights and activations to 256
levels. CPUs without VNNI instructions (AVX2, AVX-512 before Cascade Lake) multiply uint8 by int8 with an
instruction that saturates a sum of two products at 16 bits: ``reduce_range=True`` quantizes the weights to
7 bits to stay clear of it, at the price of coarser weights. :mod:`fastfcn.benchmark.int8` measures both.

Why every node and min/max: on the trained EncNet+JPU ResNet-50s of chapter 6 (2-core AVX2 EPYC, 2026-12-04,
20 validation scenes), leaving the Encoding head or the whole head in fp32, percentile calibration and ONNX
Runtime's pre-processing (``quant_pre_process``) all kept the mIoU within 0.6 points of this default and the
labels within 98.2-99.3 % of fp32, as the default does: no difference the measurement could resolve.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.environment import cpu_flags
from ..utils.io import atomic_write
from .runtimes import QUANTIZED_KEY, read_graph_props, require

__all__ = ["QUANTIZED_KEY", "CALIBRATION_IMAGES", "CALIBRATION_SIZE", "has_vnni", "quantization_of", "int8_graph",
           "calibration_images", "calibration_from_folder", "quantize_graph"]

CALIBRATION_IMAGES = 32  # what chapter 6's measurement used
CALIBRATION_SIZE = 128  # the procedural training scenes' size (chapter 7's trainings, chapter 6's trained model)


def has_vnni() -> bool:
    """Whether this CPU multiplies int8 with VNNI (``avx512_vnni`` or ``avx_vnni``), which does not saturate."""
    return bool({"avx512_vnni", "avx_vnni"} & set(cpu_flags()))


def quantization_of(onnx_path: str | Path) -> str | None:
    """How the graph at ``onnx_path`` was quantized (its :data:`QUANTIZED_KEY` record), None for an fp32 graph."""
    return read_graph_props(onnx_path).get(QUANTIZED_KEY)


def calibration_images(count: int, size: int, seed: int = 0) -> np.ndarray:
    """The first ``count`` scenes of the procedural *training* split at ``size`` x ``size``, normalised as the
    network expects: float32 ``[count, 3, size, size]`` (the activations' ranges are measured on them)."""
    from ..data.procedural import validation_scenes

    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"calibration needs at least one image, got {count!r}")
    return validation_scenes(count, size, seed, split="train").numpy()


def calibration_from_folder(folder: str | Path, count: int, size: int) -> np.ndarray:
    """The first ``count`` images (sorted by path) under ``folder``, each resized so that its short side is
    ``size`` and cropped to the centre ``size`` x ``size``, normalised: float32 ``[n, 3, size, size]``.
    ``ValueError`` (one line) when the folder holds no image or one cannot be read."""
    import torch
    import torch.nn.functional as F

    from ..data.base import read_image
    from ..data.transforms import normalize
    from .inputs import collect_inputs

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"calibration folder {root} not found: give a folder of training images")
    files = [f for f, _ in collect_inputs([root])[0]][:count]
    if not files:
        raise ValueError(f"{root} holds no image files: give a folder of training images (jpg, png, ...)")
    batch = []
    for f in files:
        try:
            image = read_image(f).float()[None]
        except Exception as exc:  # PIL's errors have no common base
            raise ValueError(f"cannot read calibration image {f} ({exc}); remove it or give another folder") from None
        h, w = image.shape[-2:]
        scale = size / min(h, w)
        resized = F.interpolate(image, size=(max(size, round(h * scale)), max(size, round(w * scale))),
                                mode="bilinear", align_corners=False, antialias=True)
        top, left = (resized.shape[-2] - size) // 2, (resized.shape[-1] - size) // 2
        batch.append(resized[0, :, top:top + size, left:left + size].clamp(0, 255) / 255.0)
    return normalize(torch.stack(batch)).numpy()


def _reader(images: np.ndarray, input_name: str) -> Any:
    quantization = require("onnxruntime.quantization", "int8 quantization")

    class Batches(quantization.CalibrationDataReader):
        """One image per call, as the calibration runs the graph."""

        def __init__(self) -> None:
            self.batches: Iterator[np.ndarray] = iter(images[i:i + 1] for i in range(len(images)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch}

    return Batches()


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """The quantizer advises through the root logger (pre-processing, rank-1 tensors it leaves in fp32):
    notes for its developers, not our users."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_graph(fp32_path: str | Path, out: str | Path, images: np.ndarray, reduce_range: bool = False) -> Path:
    """Write ``out``: the fp32 graph ``fp32_path`` (from :func:`fastfcn.inference.runtimes.export_onnx`) with
    int8 per-channel weights and uint8 activations calibrated on ``images`` (``[N, 3, H, W]``, normalised;
    :func:`calibration_images`), in QDQ form; written atomically. The fp32 graph's metadata (the checkpoint it
    comes from) is kept, and :data:`QUANTIZED_KEY` says how it was quantized."""
    quantization = require("onnxruntime.quantization", "int8 quantization")
    onnx = require("onnx", "int8 quantization")
    images = np.ascontiguousarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] != 3 or len(images) < 1:
        raise ValueError(f"calibration images must be [N, 3, H, W] with N >= 1, got shape {images.shape}")
    source = onnx.load(str(fp32_path))
    input_name = source.graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="fastfcn-int8-") as tmp, _quiet_root_logger():
        trial = Path(tmp) / "int8.onnx"
        quantization.quantize_static(
            str(fp32_path), str(trial), _reader(images, input_name), quant_format=quantization.QuantFormat.QDQ,
            activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
            per_channel=True, reduce_range=reduce_range, calibrate_method=quantization.CalibrationMethod.MinMax)
        graph = onnx.load(str(trial))
    props = {p.key: p.value for p in source.metadata_props}
    props[QUANTIZED_KEY] = (f"int8 QDQ, per-channel {'7' if reduce_range else '8'}-bit weights, uint8 activations, "
                            f"min/max of {len(images)} calibration images at {images.shape[2]}x{images.shape[3]}")
    onnx.helper.set_model_props(graph, props)
    data = graph.SerializeToString()
    return atomic_write(out, lambda f: f.write(data))


@contextlib.contextmanager
def int8_graph(model: Any, onnx_path: str | Path | None = None, images: np.ndarray | None = None) -> Iterator[Path]:
    """An int8 graph of ``model`` for as long as the ``with`` block runs: ``onnx_path`` itself when it is one
    already, else ``onnx_path`` (exported from ``model`` when None) quantized in a temporary folder, calibrated
    on ``images`` (default: :data:`CALIBRATION_IMAGES` procedural training scenes at :data:`CALIBRATION_SIZE`)."""
    from .runtimes import export_onnx

    if onnx_path is not None and quantization_of(onnx_path) is not None:
        yield Path(onnx_path)
        return
    with tempfile.TemporaryDirectory(prefix="fastfcn-int8-") as tmp:
        fp32 = Path(onnx_path) if onnx_path is not None else export_onnx(model, Path(tmp) / "fp32.onnx")
        if images is None:
            images = calibration_images(CALIBRATION_IMAGES, CALIBRATION_SIZE)
        yield quantize_graph(fp32, Path(tmp) / "int8.onnx", images)
