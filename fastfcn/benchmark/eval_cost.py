"""What ``fastfcn eval`` costs per image, against the forwards of its own network.

The network is run by the engine ``fastfcn eval`` builds by default (ONNX Runtime in fp32 on the CPU where it
is installed, else torch's exact path), on procedural validation scenes of ``size`` x ``size`` drawn into memory
before the clock starts, with the paper's sizes scaled to the image (long side 520 and crops of 480 at 512 pixels). Each
mode's figure is the marginal cost of one more image, ``(T(N) - T(1)) / (N - 1)`` (:func:`marginal_seconds`):
reading it, the network, the exponential, resizing back, the arg-max and the confusion matrix. It is divided by the
forwards that mode runs for one such image -- one at the long side in ``whole`` mode, one per sliding window in
``slide`` mode (four for 512 x 512 at the paper's sizes) -- timed on the same engine, three around each
evaluation (one before, two after), so that what lies above 1 is what evaluation adds around the network.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import save_checkpoint
from ..data import EvalTransform, build_dataset
from ..inference.evaluate import evaluate
from ..inference.fast_path import parse_variant, variant_for
from ..inference.graphs import engine_for
from ..inference.runtimes import export_onnx, graph_metadata
from ..inference.windows import sliding_windows
from ..utils.timing import interleaved_seconds, marginal_seconds
from .models import prepare_model
from .options import BenchOptions
from .rounds import inference_call
from .specs import ModelSpec, spec_fields

__all__ = ["EVAL_MODES", "eval_cost", "format_eval_cost"]

EVAL_MODES = ("whole", "slide")


def _network_inputs(mode: str, base_size: int, crop_size: int) -> tuple[int, int]:
    """(forwards per square image, side of each forward's input) in ``mode`` at scale 1: whole mode runs
    the image at the long side, slide mode one ``crop_size`` window at a time over it (a smaller image is
    padded to one window)."""
    if mode == "whole":
        return 1, base_size
    return len(sliding_windows(base_size, base_size, crop_size)[0]), crop_size


class _WithClasses:
    """``dataset`` as one of ``num_classes`` classes (its own first, unnamed ones after): the timed network has
    the paper's 59 outputs, whose exponential, resizing and arg-max are what evaluation costs on Pascal Context,
    while the procedural scenes' masks use 8 of them."""

    def __init__(self, dataset: Any, num_classes: int) -> None:
        if num_classes < dataset.num_classes:
            raise ValueError(f"the eval cost is measured on the procedural scenes' {dataset.num_classes} classes: "
                             f"--num-classes {num_classes} is fewer; use {dataset.num_classes} or more (59: Pascal Context)")
        self.dataset, self.num_classes = dataset, num_classes
        self.classes = (list(dataset.classes) + [f"unused {i}" for i in range(num_classes)])[:num_classes]
        self.ignore_index, self.name = dataset.ignore_index, dataset.name

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index]


def eval_cost(spec: ModelSpec, opts: BenchOptions, images: int = 5, rounds: int = 1,
              modes: Sequence[str] = EVAL_MODES) -> dict[str, Any]:
    """Seconds per image of :func:`fastfcn.inference.evaluate.evaluate` in each of ``modes`` on ``spec``'s
    network (random weights, BatchNorm calibrated) with ``fastfcn eval``'s default engine, and the ratio to the
    forwards the mode runs per image (``ratio_to_own_forwards``); the median over ``rounds``."""
    opts = opts.validated()
    if images < 1 or rounds < 1:
        raise ValueError(f"eval_cost needs at least one image and one round, got images={images}, rounds={rounds}")
    unknown = [m for m in modes if m not in EVAL_MODES]
    if unknown or not modes:
        raise ValueError(f"unknown eval mode(s) {unknown or list(modes)}; choose from {', '.join(EVAL_MODES)}")
    model, _ = prepare_model(spec, opts, 1)
    model.eval()
    base_size, crop_size = round(opts.size * 520 / 512), round(opts.size * 480 / 512)
    variant = variant_for("auto", "fp32", opts.device)
    with tempfile.TemporaryDirectory(prefix="fastfcn-eval-cost-") as tmp:
        # every scene drawn now and held in memory (a folder for the drawing to be kept in): drawn per item, a
        # 512 px scene takes ~45 ms of a core beside the network, where a real dataset decodes a JPEG in a few
        scenes = build_dataset("procedural", "val", root=tmp, image_size=opts.size, num_images=images,
                               seed=opts.seed, transform=EvalTransform())
        dataset = _WithClasses(scenes, opts.num_classes)
        scenes.generate(0)
        checkpoint = save_checkpoint(model, Path(tmp) / "model.pth", classes=None,
                                     train_config={"base_size": base_size, "crop_size": crop_size})
        onnx_path = None
        if parse_variant(variant, opts.device)["runtime"] != "torch":  # exported here, not into the user's cache
            onnx_path = export_onnx(model, Path(tmp) / "model.onnx", metadata=graph_metadata(checkpoint, model))
        engine = engine_for(model, checkpoint, variant, onnx_path)

        def run(mode: str, n: int) -> None:
            evaluate(engine, dataset, base_size=base_size, crop_size=crop_size, device=opts.device, limit=n,
                     progress=False, mode=mode)

        inputs = {m: _network_inputs(m, base_size, crop_size) for m in modes}
        per_image: dict[str, list[float]] = {m: [] for m in modes}
        forwards: dict[str, list[float]] = {m: [] for m in modes}
        for round_ in range(rounds + 1):
            for mode in modes:
                if not round_:  # warm-up, not kept: every network input size is seen once
                    run(mode, 1)
                    continue
                x = torch.randn(1, 3, inputs[mode][1], inputs[mode][1], device=opts.device)
                seconds, own = interleaved_seconds(lambda x=x: inference_call(engine, x),
                                                   lambda mode=mode: marginal_seconds(lambda n: run(mode, n), images),
                                                   opts.device)
                per_image[mode].append(seconds)
                forwards[mode] += own
    rows = []
    for mode in modes:
        seconds, one = statistics.median(per_image[mode]), statistics.median(forwards[mode])
        count, side = inputs[mode]
        rows.append({"mode": mode, "per_image_s": seconds, "images_per_s": 1 / seconds, "forwards": count,
                     "forward_side": side, "own_forward_s": one, "ratio_to_own_forwards": seconds / (count * one),
                     "times_s": per_image[mode], "own_forward_times_s": forwards[mode]})
    return {**spec_fields(spec), "device": opts.device, "size": opts.size, "images": images, "rounds": rounds,
            "marginal": images > 1, "threads": torch.get_num_threads(), "variant": engine.variant,
            "base_size": base_size, "crop_size": crop_size, "rows": rows}


def format_eval_cost(ec: dict[str, Any]) -> str:
    """The eval-cost result as a terminal table."""
    scenes = "1 procedural scene" if ec["images"] == 1 else f"{ec['images']} procedural scenes"
    lines = [f"fastfcn eval on {scenes} of {ec['size']}x{ec['size']}",
             f"  ({ec['name']} {ec['backbone']}, {ec['variant']}, long side {ec['base_size']}, "
             f"crops {ec['crop_size']})",
             f"{'mode':<6} {'s / image':>9} {'images/s':>8} {'forwards per image':>20} {'one forward':>11} "
             f"{'x forwards':>10}"]
    for r in ec["rows"]:
        at = f"{r['forwards']} at {r['forward_side']}x{r['forward_side']}"
        lines.append(f"{r['mode']:<6} {r['per_image_s']:>9.3f} {r['images_per_s']:>8.2f} {at:>20} "
                     f"{r['own_forward_s']:>11.3f} {r['ratio_to_own_forwards']:>10.2f}")
    per_image = (f"one more image in a run of {ec['images']}, (T({ec['images']}) - T(1)) / {ec['images'] - 1}"
                 if ec["images"] > 1 else "the image on its own")
    lines.append(f"s / image: {per_image}")
    lines.append("x forwards: over that many forwards of the same engine")
    lines.append("            (one forward: the median of three around each round's run)")
    return "\n".join(lines)
