"""int8 against fp32 in ONNX Runtime on a trained checkpoint: labels agreeing, mIoU change, speed.

The checkpoint's main output is exported to ONNX (:func:`fastfcn.inference.runtimes.export_onnx`) and
quantized statically by ONNX Runtime (QDQ format, int8 weights per channel, uint8 activations), its
activation ranges calibrated on procedural *training* scenes. Both graphs then run on the procedural
validation scenes: the share of pixels whose label is the same, and the mIoU of each
(:func:`fastfcn.inference.evaluate.evaluate`, single scale). Speed: one forward of each at ``--size``,
timed in alternation (fp32, int8, fp32, ...), medians. Writes a JSON file of the numbers.

    python scripts/int8_quantization.py CKPT --out /tmp/int8.json

Needs the ``deploy`` extra (onnx, onnxruntime).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fastfcn.checkpoint import model_from_checkpoint
from fastfcn.data.procedural import ProceduralScenes
from fastfcn.data.transforms import EvalTransform
from fastfcn.inference.evaluate import evaluate, predict_labels
from fastfcn.inference.runtimes import OnnxRuntimeModel, export_onnx, require
from fastfcn.utils.io import atomic_write_text


class _Calibration:
    """ONNX Runtime's calibration reader: normalised procedural training scenes, one at a time."""

    def __init__(self, scenes: ProceduralScenes, count: int) -> None:
        self.items = iter(range(count))
        self.scenes = scenes

    def get_next(self) -> dict[str, np.ndarray] | None:
        i = next(self.items, None)
        if i is None:
            return None
        image, _ = self.scenes[i]
        return {"image": image[None].numpy()}


def quantize(fp32: Path, int8: Path, scenes: ProceduralScenes, count: int) -> float:
    """Write the int8 graph of ``fp32``; seconds taken."""
    quantization = require("onnxruntime.quantization", "int8 quantization")
    start = time.perf_counter()
    prepared = fp32.with_name("prepared.onnx")
    quantization.shape_inference.quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    # reduce_range: 7-bit weights, so that the AVX2 u8 x s8 products (no VNNI) cannot saturate
    quantization.quantize_static(str(prepared), str(int8), _Calibration(scenes, count),
                                 quant_format=quantization.QuantFormat.QDQ, per_channel=True, reduce_range=True,
                                 activation_type=quantization.QuantType.QUInt8,
                                 weight_type=quantization.QuantType.QInt8)
    return time.perf_counter() - start


def agreement(a: torch.nn.Module, b: torch.nn.Module, scenes: ProceduralScenes, size: int) -> float:
    same = total = 0
    for i in range(len(scenes)):
        image, _ = scenes[i]
        la = predict_labels(a, image, base_size=size, crop_size=size, mode="whole")
        lb = predict_labels(b, image, base_size=size, crop_size=size, mode="whole")
        same += int((la == lb).sum())
        total += la.numel()
    return same / total


def speed(engines: dict[str, torch.nn.Module], size: int, rounds: int) -> dict[str, float]:
    x = torch.randn(1, 3, size, size)
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(rounds + 1):  # the first round warms up
        for name, engine in engines.items():
            start = time.perf_counter()
            engine(x)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t[1:]) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--calibration", type=int, default=64, help="procedural training scenes (64)")
    parser.add_argument("--val", type=int, default=100, help="procedural validation scenes (100)")
    parser.add_argument("--size", type=int, default=512, help="side of the timed input (512)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    model, ckpt = model_from_checkpoint(args.checkpoint)
    model.eval()
    train = ckpt.get("train_config") or {}
    image_size = int(train.get("image_size") or 128)
    transform = EvalTransform()
    calibration = ProceduralScenes("train", num_images=args.calibration, image_size=image_size, transform=transform)
    val = ProceduralScenes("val", num_images=args.val, image_size=image_size, transform=transform)
    with tempfile.TemporaryDirectory(prefix="fastfcn-int8-") as tmp:
        fp32_path = export_onnx(model, Path(tmp) / "fp32.onnx")
        seconds = quantize(fp32_path, Path(tmp) / "int8.onnx", calibration, args.calibration)
        engines = {"fp32": OnnxRuntimeModel(onnx_path=fp32_path, config=model.config),
                   "int8": OnnxRuntimeModel(onnx_path=Path(tmp) / "int8.onnx", config=model.config)}
        metrics = {name: evaluate(e, val, base_size=image_size, crop_size=image_size, mode="whole", progress=False)
                   for name, e in engines.items()}
        same = agreement(engines["fp32"], engines["int8"], val, image_size)
        times = speed(engines, args.size, args.rounds)
    result = {"checkpoint": str(args.checkpoint), "config": model.config, "image_size": image_size,
              "calibration_scenes": args.calibration, "val_scenes": args.val, "quantize_s": seconds,
              "labels_agree": same, "mIoU": {k: m["mIoU"] for k, m in metrics.items()},
              "pixAcc": {k: m["pixAcc"] for k, m in metrics.items()},
              "forward_s": times, "int8_speedup": times["fp32"] / times["int8"], "size": args.size,
              "threads": torch.get_num_threads()}
    print(json.dumps(result, indent=1))
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
