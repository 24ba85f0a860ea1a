"""What ``fastfcn predict`` costs per image, against one fp32 eager forward of the same model.

A folder of procedural validation scenes is written as PNG files and segmented by :func:`predict_files`
with each configuration (inference mode and fast-path variant); the model is built, exported and
warmed up before the clock starts. With more than one scene the figure is the marginal cost of one more
image, ``(T(N) - T(1)) / (N - 1)`` from a run on all ``N`` scenes and one on the first alone: reading it,
the network, the resizing and the two PNGs written, in the pipeline's threads as a folder runs them
(the first image's reading and the last one's writing, which nothing overlaps, fall out). With one scene
it is that image's whole cost. Every configuration's masks are compared with the labels of fp32 eager
whole-image inference. Rounds go over every configuration in turn, so that a drift
of the machine's speed favours none.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..checkpoint import save_checkpoint
from ..data.procedural import ProceduralScenes
from ..inference.fast_path import parse_variant, variant_for
from ..inference.predict import Predictor, output_paths, predict_files
from ..inference.runtimes import available, export_onnx, graph_metadata
from ..utils.timing import interleaved_seconds, marginal_seconds, time_calls
from .models import prepare_model
from .options import BenchOptions
from .predict_parts import format_predict_parts, predict_parts
from .rounds import inference_call
from .specs import ModelSpec, spec_fields

__all__ = ["DEFAULT_CONFIGURATIONS", "predict_cost", "format_predict_cost"]

# (mode, variant or preset); "default" is what `fastfcn predict` does with no option
DEFAULT_CONFIGURATIONS = (("slide", "fp32"), ("whole", "fp32"), ("whole", "exact"), ("whole", "default"))


def _write_scenes(folder: Path, count: int, size: int, seed: int) -> list[Path]:
    scenes = ProceduralScenes("val", num_images=count, image_size=size, seed=seed)
    paths = []
    for i in range(count):
        path = folder / f"scene{i:03d}.png"
        Image.fromarray(scenes.generate(i)[0]).save(path)
        paths.append(path)
    return paths


def _predictor(checkpoint: Path, mode: str, variant: str, device: str, onnx_path: Path | None) -> Predictor:
    if variant in ("exact", "reduced"):
        return Predictor(checkpoint, device=device, mode=mode, runtime="torch",
                         precision="fp32" if variant == "exact" else "bf16")
    # the graph goes only to a configuration that runs one (a torch path given a graph is refused)
    resolved = variant_for("auto", "fp32", device) if variant == "default" else variant
    graph = onnx_path if parse_variant(resolved, device)["runtime"] != "torch" else None
    if variant == "default":
        return Predictor(checkpoint, device=device, mode=mode, onnx_path=graph)
    return Predictor(checkpoint, device=device, mode=mode, variant=variant, onnx_path=graph)


def _time_rounds(predictors: list[Predictor], files: list[Path], checkpoint: Path, folder: Path,
                 forward: Any, at_base: torch.Tensor, rounds: int, device: str
                 ) -> tuple[list[list[float]], list[list[float]], list[float]]:
    """Per round: seconds per image of every predictor on ``files``, three forwards of its own network on
    ``at_base`` around that (one before, two after), and the reference ``forward``; round 0 warms every
    configuration up on one image and is not kept (its predict call runs each network at ``at_base``'s size,
    and ``forward`` ran before: no forward is timed cold)."""
    per_image: list[list[float]] = [[] for _ in predictors]
    own_forwards: list[list[float]] = [[] for _ in predictors]
    forwards: list[float] = []
    for round_ in range(rounds + 1):
        if round_:
            forwards += inference_call(time_calls, forward, 1, 0, device)
        for i, p in enumerate(predictors):
            out = folder / f"out{i}"
            if not round_:
                predict_files(files[:1], checkpoint, out, predictor=p, progress=False)
                continue
            seconds, own = interleaved_seconds(lambda p=p: inference_call(p.engine, at_base),
                                               lambda p=p, out=out: _marginal_s(p, files, checkpoint, out), device)
            per_image[i].append(seconds)
            own_forwards[i] += own
    return per_image, own_forwards, forwards


def _marginal_s(p: Predictor, files: list[Path], checkpoint: Path, out: Path) -> float:
    """Seconds of one more image: ``(T(N) - T(1)) / (N - 1)``; with one file, its whole cost."""
    return marginal_seconds(lambda n: predict_files(files[:n], checkpoint, out, predictor=p, progress=False),
                            len(files))


def predict_cost(spec: ModelSpec, opts: BenchOptions, images: int = 4, rounds: int = 2,
                 configurations: Sequence[tuple[str, str]] = DEFAULT_CONFIGURATIONS) -> dict[str, Any]:
    """Seconds per image of ``fastfcn predict`` for each ``(mode, variant)`` (``variant``: a fast-path
    variant, ``exact``/``reduced``, or ``default``: predict's own choice), as a ratio to one fp32 eager
    forward of the main output at ``opts.size`` x ``opts.size``; images of that size, the checkpoint's
    sizes those of the paper (long side 520, crops of 480 at 512 pixels; scaled for other sizes). Random
    weights, BatchNorm calibrated. Each row also has ``ratio_to_own_forward``: the cost over one forward of
    its own network (runtime, variant) at ``base_size`` x ``base_size``, what whole mode runs for these
    square images (the median of three forwards around each round's predict runs): what reading, resizing
    and writing add around the network. ``parts``: the default configuration's parts on each image, one after
    another (:func:`~fastfcn.benchmark.predict_parts.predict_parts`; None where it has none or is not run)."""
    opts = opts.validated()
    if images < 1 or rounds < 1:
        raise ValueError(f"predict_cost needs at least one image and one round, got images={images}, rounds={rounds}")
    model, x = prepare_model(spec, opts, 1)
    model.eval()
    with tempfile.TemporaryDirectory(prefix="fastfcn-predict-cost-") as tmp:
        folder = Path(tmp)
        # the paper's sizes for 512x512 images (long side 520, crops of 480), scaled to other image sizes
        sizes = {"base_size": round(opts.size * 520 / 512), "crop_size": round(opts.size * 480 / 512)}
        checkpoint = save_checkpoint(model, folder / "model.pth", classes=None, train_config=sizes)
        (folder / "in").mkdir()
        files = _write_scenes(folder / "in", images, opts.size, opts.seed)
        onnx_path = None
        if opts.device == "cpu" and any(available(r) for r in ("onnxruntime", "openvino")):
            # once, here, not in the user's cache; it records the checkpoint, as predict checks
            onnx_path = export_onnx(model, folder / "model.onnx", metadata=graph_metadata(checkpoint, model))
        predictors = [_predictor(checkpoint, mode, variant, opts.device, onnx_path) for mode, variant in configurations]
        reference = Predictor(checkpoint, device=opts.device, mode="whole", variant="fp32")
        want = [reference.labels(np.array(Image.open(f).convert("RGB"))) for f in files]
        with torch.inference_mode():
            forward = lambda: model(x, with_aux=False)  # noqa: E731  the reference: one fp32 eager forward
            forward()
        # the input each predictor's network sees for one of these square images in whole mode
        at_base = torch.randn(1, 3, reference.base_size, reference.base_size, device=opts.device)
        per_image, own_forwards, forwards = _time_rounds(predictors, files, checkpoint, folder, forward, at_base,
                                                         rounds, opts.device)
        default = dict(zip(configurations, predictors, strict=True)).get(("whole", "default"))
        parts = predict_parts(default, files, folder / "parts") if default is not None else None
        rows = []
        forward_s = statistics.median(forwards)
        for i, ((mode, asked), p) in enumerate(zip(configurations, predictors, strict=True)):
            same = total = 0
            for f, labels in zip(files, want, strict=True):
                mask = np.asarray(Image.open(output_paths(folder / f"out{i}", Path(f.name))[0]))
                same += int((mask == labels).sum())
                total += labels.size
            seconds = statistics.median(per_image[i])
            own_s = statistics.median(own_forwards[i])
            rows.append({"mode": mode, "asked": asked, "variant": p.variant, "per_image_s": seconds,
                         "ratio_to_forward": seconds / forward_s, "agreement": same / total,
                         "times_s": per_image[i], "own_forward_s": own_s,
                         "own_forward_times_s": own_forwards[i], "ratio_to_own_forward": seconds / own_s})
    return {**spec_fields(spec), "device": opts.device, "size": opts.size, "images": images, "rounds": rounds,
            "marginal": images > 1, "threads": torch.get_num_threads(), "base_size": reference.base_size, "crop_size": reference.crop_size,
            "forward_s": forward_s, "forward_times_s": forwards, "rows": rows, "parts": parts}


def format_predict_cost(pc: dict[str, Any]) -> str:
    """The predict-cost result as a terminal table."""
    vw = max([len("variant"), *(len(r["variant"]) for r in pc["rows"])])
    scenes = "1 procedural scene" if pc["images"] == 1 else f"{pc['images']} procedural scenes"
    lines = [f"fastfcn predict on {scenes} of {pc['size']}x{pc['size']}",
             f"  ({pc['name']} {pc['backbone']}, long side {pc['base_size']}, crops {pc['crop_size']})",
             f"one fp32 eager forward at {pc['size']}x{pc['size']}: {pc['forward_s']:.3f} s",
             f"{'mode':<6} {'asked':<8} {'variant':<{vw}} {'s / image':>9} {'x forward':>9} {'x own':>6} "
             f"{'labels = fp32 whole':>19}"]
    for r in pc["rows"]:
        own = f"{r['ratio_to_own_forward']:>6.2f}" if "ratio_to_own_forward" in r else f"{'':>6}"
        lines.append(f"{r['mode']:<6} {r['asked']:<8} {r['variant']:<{vw}} {r['per_image_s']:>9.3f} "
                     f"{r['ratio_to_forward']:>9.2f} {own} {100 * r['agreement']:>18.3f}%")
    per_image = (f"one more image in a run of {pc['images']}, (T({pc['images']}) - T(1)) / {pc['images'] - 1}"
                 if pc["images"] > 1 else "the image on its own (its reading and writing overlap nothing)")
    lines.append(f"s / image: {per_image}")
    lines.append(f"x own: over one forward of the configuration's own network at {pc['base_size']}x"
                 f"{pc['base_size']}")
    lines.append(f"       (the whole image at long side {pc['base_size']}; "
                 "the median of three around each round's run)")
    if pc.get("parts") is not None:
        lines += ["", format_predict_parts(pc["parts"])]
    return "\n".join(lines)
