"""Segment image files with a trained checkpoint: a coloured mask PNG and an overlay PNG per image.

* Inputs are files or folders (searched recursively, following symbolic links, for files with an image
  extension that Pillow knows; names starting with ``.`` are skipped). A file named explicitly is always
  tried. The output folder (and the sub-folders this run writes into) is never read as input, so running
  twice with ``--out`` inside an input folder does not segment the masks.
* Any size works: the image is resized so its long side is the checkpoint's ``base_size`` and run once
  (``mode="whole"``, the default) or covered by sliding windows as in evaluation (``mode="slide"``), in
  the runtime :class:`Predictor` chooses (ONNX Runtime where installed, else our exact fp32 path; reduced
  precision on request); only label maps are kept at full resolution
  (:func:`fastfcn.inference.evaluate.predict_labels`), so memory does not grow with classes x pixels.
  An image above ``max_pixels`` (default :data:`~fastfcn.data.images.DEFAULT_MAX_PIXELS`, 100 million) is
  refused from its header, before it is decoded, as Pillow's decompression-bomb guard does.
* Every Pillow mode becomes RGB uint8 as :func:`fastfcn.data.images.read_rgb` says (the reader the
  datasets use too); EXIF orientation is applied, so the mask matches the photo as a viewer shows it.
* Output names keep the whole input file name, extension included: ``photo.jpg`` gives
  ``photo.jpg_mask.png`` and ``photo.jpg_overlay.png`` (so ``a.png`` and ``a.jpg`` never collide). A file
  given directly is written into ``out_dir``; one found under a folder ``IN`` keeps its path below
  ``out_dir/IN/``. If two inputs would still get the same name (the same file name from two places), the
  later gets ``_2``, ``_3``, ... after its file name (``photo.jpg_2_mask.png``).
* ``NAME_mask.png`` is a palette PNG: its pixel values are the class ids (so it is the label map) and
  its palette gives every class its colour. ``NAME_overlay.png`` blends those colours over the image.
  Files are written atomically (temporary file + rename), the two of an image together: both are
  written completely before either replaces a file, so an image whose overlay cannot be written (a full
  disk) leaves a previous run's mask and overlay of it as they were, and no new mask.
* A file that cannot be read, is too large, fails while it is segmented (e.g. out of memory) or cannot be
  written, a broken symbolic link, a special file or an unreadable folder is reported on stderr with its
  name; the others are still processed, and the result lists the failures (the command exits non-zero).
  NaN/inf in the class probabilities give a warning naming the image.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from PIL import Image

from ..data.images import DEFAULT_MAX_PIXELS, ImageTooLargeError, image_extensions, read_rgb
from ..utils.io import atomic_write, atomic_write_all
from .evaluate import PREDICT_BYTES, collect_nonfinite
from .graphs import cached_onnx, engine_for

__all__ = ["collect_inputs", "overlay", "save_png", "Predictor", "predict_files", "PredictResult",
           "output_paths", "cached_onnx", "engine_for"]

_BAND_PIXELS = 2**20  # pixels per band when the overlay is blended


def _walk(root: Path, exclude: set[Path], exts: set[str], problems: list[tuple[Path, str]]) -> tuple[list[Path], int]:
    """Image files under ``root`` (sorted, symbolic links followed, loops and ``exclude`` pruned), and how
    many files were skipped for their extension; broken links, special files and unreadable folders go
    to ``problems``."""
    files: list[Path] = []
    skipped = 0
    seen = {root.resolve()}

    def unreadable(err: OSError) -> None:
        problems.append((Path(err.filename or root), f"cannot read this folder ({err.strerror or err})"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=True):
        folder = Path(dirpath)
        keep = []
        for name in sorted(dirnames):
            real = (folder / name).resolve()
            if name.startswith(".") or real in exclude or real in seen:
                continue
            seen.add(real)
            keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            f = folder / name
            if name.startswith("."):
                continue
            if f.suffix.lower() not in exts:
                skipped += 1
            elif f.is_symlink() and not f.exists():
                problems.append((f, f"broken symbolic link (it points to {os.readlink(f)!r})"))
            elif not f.is_file():
                problems.append((f, "not a regular file (a pipe, socket or device)"))
            else:
                files.append(f)
    return files, skipped


def collect_inputs(inputs: Sequence[str | Path], out_dir: str | Path | None = None
                   ) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]], int]:
    """``(file, output name relative to out_dir)`` pairs, the inputs that cannot be processed with the
    reason (missing, broken link, special file, unreadable folder), and how many folder files were skipped
    for not having an image extension. The output name is the file's whole name (``photo.jpg``); files
    keep their folder structure below a folder input. ``out_dir`` and the folders this run writes into are
    not searched."""
    exts = image_extensions()
    files: list[tuple[Path, Path]] = []
    problems: list[tuple[Path, str]] = []
    skipped = 0
    exclude: set[Path] = set()
    if out_dir is not None:
        out = Path(out_dir).resolve()
        exclude = {out} | {out / (Path(raw).resolve().name or "input") for raw in inputs if Path(raw).is_dir()}
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found, n = _walk(path, exclude, exts, problems)
            skipped += n
            base = Path(path.resolve().name or "input")
            files += [(f, base / f.relative_to(path)) for f in found]
        elif path.is_file():
            files.append((path, Path(path.name)))
        elif path.is_symlink():
            problems.append((path, f"broken symbolic link (it points to {os.readlink(path)!r})"))
        elif path.exists():
            problems.append((path, "not a regular file (a pipe, socket or device)"))
        else:
            problems.append((path, "no such file or folder"))
    # two inputs must not write the same outputs (the same file name from two places, or one file twice)
    used: set[Path] = set()
    unique = []
    for f, name in files:
        candidate, n = name, 2
        while candidate in used:
            candidate = name.with_name(f"{name.name}_{n}")
            n += 1
        used.add(candidate)
        unique.append((f, candidate))
    return unique, problems, skipped


def output_paths(out_dir: str | Path, name: Path) -> tuple[Path, Path]:
    """The mask and overlay paths of an input whose output name is ``name`` (see :func:`collect_inputs`)."""
    base = Path(out_dir) / name
    return base.with_name(f"{base.name}_mask.png"), base.with_name(f"{base.name}_overlay.png")


def overlay(rgb: np.ndarray, colours: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend ``colours`` (``uint8 [H, W, 3]``) over ``rgb`` with weight ``alpha``."""
    out = (1.0 - alpha) * rgb.astype(np.float32) + alpha * colours.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def save_png(image: Image.Image, path: Path) -> Path:
    """Write a PNG atomically (temporary file in the same folder, then rename)."""
    return atomic_write(path, lambda f: image.save(f, format="PNG"))


class Predictor:
    """A model from a checkpoint, the inference settings it was trained with, and the way it is run.

    ``mode``: ``"whole"`` (one forward of the image resized to its long side ``base_size``; the default) or
    ``"slide"`` (the official sliding window, four forwards for a photo at the paper's sizes); see
    :mod:`fastfcn.inference.windows`. ``runtime``/``precision``/``compile``: how the forward runs
    (:func:`fastfcn.inference.fast_path.variant_for`): by default ONNX Runtime where it is installed, else
    our exact path (fp32, channels_last, BatchNorm folded). ``onnx_path``: an exported graph of this
    checkpoint for ONNX Runtime/OpenVINO; by default it is exported once and kept in the cache folder.
    ``variant``: a fast-path variant that replaces the three (e.g. ``"fp32"``: plain eager, the reference).
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto", multi_scale: bool = False,
                 base_size: int | None = None, crop_size: int | None = None,
                 max_bytes: int = PREDICT_BYTES, mode: str = "whole", runtime: str = "auto",
                 precision: str = "fp32", compile: bool = False, onnx_path: str | Path | None = None,
                 variant: str | None = None) -> None:
        from ..checkpoint import model_from_checkpoint
        from ..utils.device import resolve_device
        from .evaluate import MS_SCALES
        from .fast_path import variant_for
        from .windows import MODES

        if mode not in MODES:
            raise ValueError(f"unknown inference mode {mode!r}; choose one of {', '.join(MODES)}")
        self.device = resolve_device(device)
        if variant is None:  # bad choices fail before the loading
            variant = variant_for(runtime, precision, self.device, compile)
        self.model, ckpt = model_from_checkpoint(checkpoint)
        self.model.to(self.device)
        train_config = ckpt.get("train_config") or {}
        self.base_size = base_size or train_config.get("base_size") or 520
        self.crop_size = crop_size or train_config.get("crop_size") or 480
        self.num_classes = int(self.model.config["num_classes"])
        self.classes = ckpt.get("classes")
        self.colours = ckpt.get("palette")  # the dataset's own class colours (classes.txt, Cityscapes), if any
        self.max_bytes = max_bytes
        self.mode = mode
        self.scales = MS_SCALES if multi_scale else (1.0,)
        self.flip = multi_scale
        self.engine = engine_for(self.model, checkpoint, variant, onnx_path)
        self.variant = self.engine.variant

    @property
    def reduced(self) -> bool:
        """Whether the network runs in reduced precision (bf16/fp16, or OpenVINO at its default)."""
        return any(t in self.variant.split("+") for t in ("bf16", "fp16")) or self.variant == "openvino"

    def describe(self) -> str:
        """One line: how the images are run (runtime, precision, mode, sizes)."""
        mode = (f"whole image at long side {self.base_size}" if self.mode == "whole" else
                f"sliding {self.crop_size} windows at long side {self.base_size}")
        scales = " x 6 scales + flip" if len(self.scales) > 1 else ""
        note = "; reduced precision: a few labels may differ from fp32" if self.reduced else ""
        return f"{self.variant} on {self.device}, {mode}{scales}{note}"

    def labels(self, rgb: np.ndarray) -> np.ndarray:
        """``uint8 [H, W, 3]`` -> class ids ``[H, W]`` (uint8 up to 256 classes, else int32)."""
        from .evaluate import predict_labels

        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image [H, W, 3], got {rgb.dtype} {rgb.shape}")
        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).to(self.device)
        labels = predict_labels(self.engine, image, self.scales, self.flip, self.base_size, self.crop_size,
                                max_bytes=self.max_bytes, mode=self.mode)
        return labels.cpu().numpy()


def _palette_table(num_classes: int, colours: Any = None) -> np.ndarray:
    """The checkpoint's own class colours where it has one for every class, else the default palette."""
    from ..data.palette import class_colours

    return class_colours(num_classes, colours)


def _mask_image(labels: np.ndarray, table: np.ndarray) -> Image.Image:
    """The label map as a palette PNG image (mode P) up to 256 classes, else as its colours (RGB)."""
    num_classes = len(table)
    if num_classes <= 256:
        im = Image.fromarray(labels.astype(np.uint8, copy=False))  # mode L; putpalette turns it into P
        flat = np.zeros((256, 3), np.uint8)
        flat[:num_classes] = table
        im.putpalette(flat.reshape(-1).tolist())
        return im
    return _banded_rgb(labels.shape, lambda top, bottom: table[labels[top:bottom]])


def _banded_rgb(shape: tuple[int, ...], band) -> Image.Image:
    """An RGB image filled a band of rows at a time from ``band(top, bottom) -> uint8 [rows, W, 3]``."""
    height, width = shape[:2]
    im = Image.new("RGB", (width, height))
    rows = max(1, _BAND_PIXELS // max(1, width))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        im.paste(Image.fromarray(band(top, bottom)), (0, top))
    return im


@dataclass
class PredictResult:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped_non_images: int = 0
    warnings: list[tuple[Path, str]] = field(default_factory=list)


def _report(message: str, bar: object | None) -> None:
    if bar is not None:
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    else:
        text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _png(image: Callable[[], Image.Image]) -> Callable[[BinaryIO], None]:
    return lambda f: image().save(f, format="PNG")


def _segment_one(predictor: Predictor, rgb: np.ndarray, table: np.ndarray, alpha: float,
                 mask_path: Path, overlay_path: Path) -> list[Path]:
    labels = predictor.labels(rgb)
    # the two images are made while they are written (never both in memory) and renamed together only once
    # both are complete: a failed write (a full disk) leaves a previous run's mask and overlay as they were
    mask = _png(lambda: _mask_image(labels, table))
    blended = _png(lambda: _banded_rgb(rgb.shape, lambda top, bottom: overlay(rgb[top:bottom],
                                                                              table[labels[top:bottom]], alpha)))
    try:
        return atomic_write_all([(mask_path, mask), (overlay_path, blended)])
    except OSError as exc:
        raise OSError(f"cannot write {mask_path} and {overlay_path.name} ({_reason(exc)}); the previous ones, "
                      "if any, are unchanged") from None


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file; predict writes a folder of PNGs there: give a folder "
                         "(it is created if missing)")
    for parent in out_dir.absolute().parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"cannot create the output folder {out_dir}: {parent} is a file")


def _check_writable(out_dir: Path) -> None:
    """Create ``out_dir`` and write a file into it now, before any image is segmented: a read-only or
    unwritable folder is one line at the start, not one failure per image after all the work."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir, prefix=".fastfcn-write-check-"):
            pass
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write into the output folder ({exc.strerror or exc}); choose another "
                      "--out", str(out_dir)) from None


def predict_files(inputs: Iterable[str | Path], checkpoint: str | Path, out_dir: str | Path, device: str = "auto",
                  multi_scale: bool = False, alpha: float = 0.5, progress: bool = True,
                  predictor: Predictor | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                  **settings: Any) -> PredictResult:
    """Write ``NAME_mask.png`` and ``NAME_overlay.png`` under ``out_dir`` for every input image (``NAME``:
    the input's file name with its extension, see the module docstring). ``max_pixels``: larger images are
    refused (0 or None: no limit of ours; None keeps Pillow's guard). ``settings``: passed to
    :class:`Predictor` (``mode``, ``runtime``, ``precision``, ``compile``, ``onnx_path``)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha (the overlay's opacity) must lie in [0, 1], got {alpha}")
    if max_pixels is not None and max_pixels < 0:
        raise ValueError(f"max_pixels must be 0 (no limit) or positive, got {max_pixels}")
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    files, problems, skipped = collect_inputs(list(inputs), out_dir)
    result = PredictResult(skipped_non_images=skipped)
    for path, reason in problems:
        result.failed.append((path, reason))
        print(f"fastfcn predict: {path}: {reason}; skipped", file=sys.stderr)
    if not files:
        return result
    _check_writable(out_dir)
    predictor = predictor or Predictor(checkpoint, device=device, multi_scale=multi_scale, **settings)
    if progress or predictor.reduced:  # reduced precision is always said
        print(f"fastfcn predict: {predictor.describe()}", file=sys.stderr)
    table = _palette_table(predictor.num_classes, getattr(predictor, "colours", None))
    bar = None
    if progress and len(files) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), desc="predict", unit="img", dynamic_ncols=True)
    try:
        for path, name in files:
            _predict_one(predictor, path, name, out_dir, table, alpha, max_pixels, result, bar)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return result


def _predict_one(predictor: Predictor, path: Path, name: Path, out_dir: Path, table: np.ndarray, alpha: float,
                 max_pixels: int | None, result: PredictResult, bar: object | None) -> None:
    try:
        rgb = read_rgb(path, max_pixels=max_pixels)
    except ImageTooLargeError as exc:
        reason = (f"{exc}: raise --max-pixels (default {DEFAULT_MAX_PIXELS}) to segment it, or shrink it")
        result.failed.append((path, reason))
        _report(f"fastfcn predict: {path}: {reason}; skipped", bar)
        return
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, MemoryError) as exc:
        reason = _reason(exc)
        result.failed.append((path, reason))
        _report(f"fastfcn predict: {path}: cannot read this file as an image ({reason}); skipped", bar)
        return
    mask_path, overlay_path = output_paths(out_dir, name)
    try:
        with collect_nonfinite() as found:
            written = _segment_one(predictor, rgb, table, alpha, mask_path, overlay_path)
    except (RuntimeError, MemoryError, OSError, ValueError) as exc:
        reason = _reason(exc)
        result.failed.append((path, reason))
        _report(f"fastfcn predict: {path}: failed ({reason}); skipped", bar)
        return
    result.written += written
    if found:
        more = f" (and {len(found) - 1} more such warning(s))" if len(found) > 1 else ""
        result.warnings.append((path, found[0]))
        _report(f"fastfcn predict: {path}: warning: {found[0]}{more}", bar)
