"""Segment image files with a trained checkpoint: a coloured mask PNG and an overlay PNG per image.

* Inputs are files or folders (searched recursively for files with an image extension that Pillow
  knows); a file named explicitly is always tried. Any size works (the image is resized so its long side
  is the checkpoint's ``base_size`` and covered by sliding windows, as in evaluation).
* Every Pillow mode becomes RGB uint8 as :func:`fastfcn.data.images.read_rgb` says (the reader the
  datasets use too); EXIF orientation is applied, so the mask matches the photo as a viewer shows it.
* ``NAME_mask.png`` is a palette PNG: its pixel values are the class ids (so it is the label map) and
  its palette gives every class its colour. ``NAME_overlay.png`` blends those colours over the image.
  Files are written atomically (temporary file + rename).
* A file that cannot be read as an image is reported on stderr with its name and skipped; the others
  are still processed, and the result lists the failures (the command exits non-zero).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.images import image_extensions, read_rgb
from ..utils.io import atomic_write

__all__ = ["collect_inputs", "overlay", "save_png", "Predictor", "predict_files",
           "PredictResult"]

def collect_inputs(inputs: Sequence[str | Path]) -> tuple[list[tuple[Path, Path]], list[Path], int]:
    """``(file, output stem relative to --out)`` pairs, the missing inputs, and how many folder files were
    skipped for not having an image extension. Files keep their folder structure below a folder input."""
    exts = image_extensions()
    files: list[tuple[Path, Path]] = []
    missing: list[Path] = []
    skipped = 0
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                rel = f.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if f.suffix.lower() not in exts:
                    skipped += 1
                    continue
                files.append((f, Path(path.resolve().name or "input") / rel.with_suffix("")))
        elif path.is_file():
            files.append((path, Path(path.stem)))
        else:
            missing.append(path)
    # two inputs must not write the same outputs (a.jpg and a.png, or one file given twice)
    used: set[Path] = set()
    unique = []
    for f, stem in files:
        candidate = stem
        if candidate in used:
            candidate = stem.with_name(f"{stem.name}_{f.suffix.lstrip('.').lower() or 'file'}")
        n = 2
        while candidate in used:
            candidate = stem.with_name(f"{stem.name}_{n}")
            n += 1
        used.add(candidate)
        unique.append((f, candidate))
    return unique, missing, skipped


def overlay(rgb: np.ndarray, colours: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend ``colours`` (``uint8 [H, W, 3]``) over ``rgb`` with weight ``alpha``."""
    out = (1.0 - alpha) * rgb.astype(np.float32) + alpha * colours.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def save_png(image: Image.Image, path: Path) -> Path:
    """Write a PNG atomically (temporary file in the same folder, then rename)."""
    return atomic_write(path, lambda f: image.save(f, format="PNG"))


class Predictor:
    """A model from a checkpoint plus the inference settings it was trained with."""

    def __init__(self, checkpoint: str | Path, device: str = "auto", multi_scale: bool = False,
                 base_size: int | None = None, crop_size: int | None = None) -> None:
        from ..checkpoint import model_from_checkpoint
        from ..utils.device import resolve_device

        self.device = resolve_device(device)
        self.model, ckpt = model_from_checkpoint(checkpoint)
        self.model.to(self.device)
        train_config = ckpt.get("train_config") or {}
        self.base_size = base_size or train_config.get("base_size") or 520
        self.crop_size = crop_size or train_config.get("crop_size") or 480
        self.num_classes = int(self.model.config["num_classes"])
        self.classes = ckpt.get("classes")
        from .evaluate import MS_SCALES

        self.scales = MS_SCALES if multi_scale else (1.0,)
        self.flip = multi_scale

    def labels(self, rgb: np.ndarray) -> np.ndarray:
        """``uint8 [H, W, 3]`` -> class ids ``int64 [H, W]``."""
        from .evaluate import predict_probs

        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).to(self.device)
        probs = predict_probs(self.model, image, self.scales, self.flip, self.base_size, self.crop_size)
        return probs.argmax(0).cpu().numpy()


def _mask_image(labels: np.ndarray, num_classes: int) -> tuple[Image.Image, np.ndarray]:
    from ..data import palette

    table = palette(num_classes)
    colours = table[labels]
    if num_classes <= 256:
        im = Image.fromarray(labels.astype(np.uint8))  # mode L; putpalette turns it into P
        flat = np.zeros((256, 3), np.uint8)
        flat[:num_classes] = table
        im.putpalette(flat.reshape(-1).tolist())
    else:
        im = Image.fromarray(colours)
    return im, colours


@dataclass
class PredictResult:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped_non_images: int = 0


def _report(message: str, bar: object | None) -> None:
    if bar is not None:
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr)


def predict_files(inputs: Iterable[str | Path], checkpoint: str | Path, out_dir: str | Path, device: str = "auto",
                  multi_scale: bool = False, alpha: float = 0.5, progress: bool = True,
                  predictor: Predictor | None = None) -> PredictResult:
    """Write ``NAME_mask.png`` and ``NAME_overlay.png`` under ``out_dir`` for every input image."""
    out_dir = Path(out_dir)
    files, missing, skipped = collect_inputs(list(inputs))
    result = PredictResult(skipped_non_images=skipped)
    for path in missing:
        result.failed.append((path, "no such file or folder"))
        print(f"fastfcn predict: {path}: no such file or folder", file=sys.stderr)
    if not files:
        return result
    predictor = predictor or Predictor(checkpoint, device=device, multi_scale=multi_scale)
    bar = None
    if progress and len(files) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), desc="predict", unit="img", dynamic_ncols=True)
    try:
        for path, stem in files:
            try:
                rgb = read_rgb(path)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                reason = str(exc) or type(exc).__name__
                result.failed.append((path, reason))
                _report(f"fastfcn predict: {path}: cannot read this file as an image ({reason}); skipped", bar)
            else:
                labels = predictor.labels(rgb)
                mask, colours = _mask_image(labels, predictor.num_classes)
                result.written.append(save_png(mask, out_dir / f"{stem}_mask.png"))
                blended = Image.fromarray(overlay(rgb, colours, alpha))
                result.written.append(save_png(blended, out_dir / f"{stem}_overlay.png"))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return result
