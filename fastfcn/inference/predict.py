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
  NaN/inf in the class scores give a warning naming the image.
* The images go through a pipeline (:mod:`fastfcn.inference.pipeline`): while the network runs one
  image, a reader thread decodes the next ones and a writer thread colours, blends, encodes and writes
  the previous one's PNGs (waiting on the disk included), in the time the network leaves a core free.
  In whole mode at one scale on the CPU, for images whose class scores fit in
  :data:`~fastfcn.inference.evaluate.LATER_BYTES` (59 classes at 512 x 512), the writer also finishes the
  labels (exponential, resizing back, arg-max: :meth:`Predictor.labels_later`), so the caller's thread goes on
  to the next image's network at once; elsewhere the labels are finished on the caller's thread. The files
  and the messages are those of one image after another, in the same order.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from ..data.images import (
    DEFAULT_MAX_PIXELS,
    ImageTooLargeError,
    image_size,
    read_rgb,
    save_png,
    write_png,
    write_rgb_png,
)
from ..utils.io import atomic_write_all
from ..utils.timing import lap
from .evaluate import collect_nonfinite
from .graphs import cached_onnx, engine_for
from .inputs import collect_inputs, output_paths
from .pipeline import Deferred, run_in_order
from .predictor import Predictor

__all__ = ["collect_inputs", "overlay", "save_png", "Predictor", "predict_files", "PredictResult",
           "output_paths", "cached_onnx", "engine_for", "write_prediction", "MASK_LAP", "OVERLAY_LAP"]

MASK_LAP, OVERLAY_LAP = "mask PNG", "overlay PNG"  # write_prediction's laps (fastfcn.utils.timing.lap)
_BAND_PIXELS = 2**20  # pixels per band when the overlay is blended
_ABOVE_ANY_BUDGET = 2**62  # the decoded size counted for an image too large for Pillow to open


def overlay(rgb: np.ndarray, colours: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend ``colours`` (``uint8 [H, W, 3]``) over ``rgb`` with weight ``alpha``, rounded half to even."""
    if alpha == 0.5:  # the default, in integers: (a + b) / 2 with halves to the even neighbour, as np.rint gives
        total = rgb.astype(np.uint16) + colours
        half = total >> 1
        return (half + (total & half & 1)).astype(np.uint8)
    out = (1.0 - alpha) * rgb.astype(np.float32) + alpha * colours.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _palette_table(num_classes: int, colours: Any = None) -> np.ndarray:
    """The checkpoint's own class colours where it has one for every class, else the default palette."""
    from ..data.palette import class_colours

    return class_colours(num_classes, colours)


def _write_mask(labels: np.ndarray, table: np.ndarray, file: BinaryIO) -> None:
    """The label map as a palette PNG (mode P) up to 256 classes, else as its colours (RGB)."""
    num_classes = len(table)
    if num_classes <= 256:
        im = Image.fromarray(labels.astype(np.uint8, copy=False))  # mode L; putpalette turns it into P
        flat = np.zeros((256, 3), np.uint8)
        flat[:num_classes] = table
        im.putpalette(flat.reshape(-1).tolist())
        write_png(im, file)
    else:
        _write_banded_rgb(labels.shape, lambda top, bottom: table[labels[top:bottom]], file)


def _write_banded_rgb(shape: tuple[int, ...], band: Callable[[int, int], np.ndarray], file: BinaryIO) -> None:
    """An RGB PNG made a band of rows at a time by ``band(top, bottom) -> uint8 [rows, W, 3]`` (never whole)."""
    height, width = shape[:2]
    rows = max(1, _BAND_PIXELS // max(1, width))
    write_rgb_png(file, (band(top, min(height, top + rows)) for top in range(0, height, rows)), height, width)


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


def write_prediction(rgb: np.ndarray, labels: np.ndarray, table: np.ndarray, alpha: float,
                     mask_path: Path, overlay_path: Path) -> list[Path]:
    """Write one image's ``NAME_mask.png`` (``labels`` as a palette PNG, the colours of ``table``) and
    ``NAME_overlay.png`` (those colours blended over ``rgb`` at opacity ``alpha``) atomically, the two together;
    the paths written. Encoding each is a named lap (:func:`~fastfcn.utils.timing.lap`)."""
    # the two images are made while they are written (never both in memory) and renamed together only once
    # both are complete: a failed write (a full disk) leaves a previous run's mask and overlay as they were
    def mask(f: BinaryIO) -> None:
        with lap(MASK_LAP):
            _write_mask(labels, table, f)

    def blended_rows(top: int, bottom: int) -> np.ndarray:
        return overlay(rgb[top:bottom], table[labels[top:bottom]], alpha)

    def blended(f: BinaryIO) -> None:
        with lap(OVERLAY_LAP):
            _write_banded_rgb(rgb.shape, blended_rows, f)
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
    :class:`Predictor` (``mode``, ``runtime``, ``precision``, ``compile``, ``onnx_path``). ``progress=False``:
    no progress lines, the notice of a first export to ONNX among them; failures and reduced precision are
    still said."""
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
    if predictor is None:  # whether to compile is decided from the windows of every image (their headers)
        settings.setdefault("announce", progress)  # no progress lines: no export notice either
        predictor = Predictor(checkpoint, device=device, multi_scale=multi_scale,
                              image_sizes=(image_size(path) for path, _ in files), **settings)
    if getattr(predictor, "compile_reason", None) is not None:
        print(f"fastfcn predict: {predictor.compile_reason}", file=sys.stderr)
    if progress or predictor.reduced:  # reduced precision is always said
        print(f"fastfcn predict: {predictor.describe()}", file=sys.stderr)
    table = _palette_table(predictor.num_classes, getattr(predictor, "colours", None))
    bar = None
    if progress and len(files) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), desc="predict", unit="img", dynamic_ncols=True)
    try:
        run_in_order(files, **_stages(predictor, out_dir, table, alpha, max_pixels, result, bar))
    finally:
        if bar is not None:
            bar.close()
    return result


@dataclass
class _Outcome:
    """What one image gave (files written, or a failure, and a warning) and the lines that say so, kept until
    every earlier image's lines are out: the messages come in the order of the inputs."""

    path: Path
    written: list[Path] = field(default_factory=list)
    failure: str | None = None
    warning: str | None = None
    lines: list[str] = field(default_factory=list)


def _read(path: Path, max_pixels: int | None) -> np.ndarray | _Outcome:
    """The image's pixels, or the outcome that says why it cannot be read (run in a reader thread)."""
    try:
        return read_rgb(path, max_pixels=max_pixels)
    except ImageTooLargeError as exc:
        reason = f"{exc}: raise --max-pixels (default {DEFAULT_MAX_PIXELS}) to segment it, or shrink it"
        return _Outcome(path, failure=reason, lines=[f"fastfcn predict: {path}: {reason}; skipped"])
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, MemoryError) as exc:
        reason = _reason(exc)
        return _Outcome(path, failure=reason,
                        lines=[f"fastfcn predict: {path}: cannot read this file as an image ({reason}); skipped"])


def _failed(path: Path, exc: BaseException) -> _Outcome:
    reason = _reason(exc)
    return _Outcome(path, failure=reason, lines=[f"fastfcn predict: {path}: failed ({reason}); skipped"])


Segmented = tuple[np.ndarray, str | None, str]  # labels, the first non-finite warning, the line that says it


def _segmented(path: Path, labels: np.ndarray, found: list[str]) -> Segmented:
    if not found:
        return labels, None, ""
    more = f" (and {len(found) - 1} more such warning(s))" if len(found) > 1 else ""
    return labels, found[0], f"fastfcn predict: {path}: warning: {found[0]}{more}"


def _segment(predictor: Predictor, path: Path, rgb: np.ndarray) -> Callable[[], Segmented | _Outcome] | _Outcome:
    """The network's half of one image's labels, on the network's thread: what gives the labels with the first
    non-finite warning and the line for it (computed in the writer thread where the predictor can split the
    work, :meth:`Predictor.labels_later`), or the outcome of a failure (e.g. out of memory)."""
    try:
        with collect_nonfinite() as found:
            finish = predictor.labels_later(rgb)
            labels = predictor.labels(rgb) if finish is None else None
    except (RuntimeError, MemoryError, OSError, ValueError) as exc:
        return _failed(path, exc)
    if finish is None:
        return lambda: _segmented(path, labels, found)

    def later() -> Segmented | _Outcome:
        try:
            got, message = finish()
        except (RuntimeError, MemoryError, OSError, ValueError) as exc:
            return _failed(path, exc)
        return _segmented(path, got, found + ([message] if message else []))

    return later


def _write(path: Path, rgb: np.ndarray, segment: Callable[[], Segmented | _Outcome], table: np.ndarray,
           alpha: float, paths: tuple[Path, Path]) -> _Outcome:
    """Finish the labels, colour, blend, encode and write the two PNGs of one image (run in the writer thread)."""
    segmented = segment()
    if isinstance(segmented, _Outcome):
        return segmented
    labels, warning, line = segmented
    try:
        written = write_prediction(rgb, labels, table, alpha, *paths)
    except (RuntimeError, MemoryError, OSError, ValueError) as exc:
        return _failed(path, exc)
    return _Outcome(path, written=written, warning=warning, lines=[line] if line else [])


def _publish(outcome: _Outcome, result: PredictResult, bar: object | None) -> None:
    result.written += outcome.written
    if outcome.failure is not None:
        result.failed.append((outcome.path, outcome.failure))
    if outcome.warning is not None:
        result.warnings.append((outcome.path, outcome.warning))
    for line in outcome.lines:
        _report(line, bar)
    if bar is not None:
        bar.update(1)


def _stages(predictor: Predictor, out_dir: Path, table: np.ndarray, alpha: float, max_pixels: int | None,
            result: PredictResult, bar: object | None) -> dict[str, Callable[..., Any]]:
    """The stages of :func:`fastfcn.inference.pipeline.run_in_order` for ``(file, output name)`` items."""

    def run(item: tuple[Path, Path], rgb: np.ndarray | _Outcome) -> _Outcome | Deferred:
        if isinstance(rgb, _Outcome):  # it could not be read
            return rgb
        segment = _segment(predictor, item[0], rgb)
        if isinstance(segment, _Outcome):
            return segment
        paths = output_paths(out_dir, item[1])
        return Deferred(lambda: _write(item[0], rgb, segment, table, alpha, paths))

    return {"read": lambda item: _read(item[0], max_pixels), "run": run,
            "publish": lambda outcome: _publish(outcome, result, bar), "size": lambda item: _decoded_bytes(item[0])}


def _decoded_bytes(path: Path) -> int:
    """The bytes of ``path``'s pixels once decoded, from its header (0 when the header cannot be read: the
    reader then reports the file; more than any budget for an image above Pillow's own limit)."""
    try:
        with warnings.catch_warnings():  # the reader applies the pixel limit and says what is wrong, not this peek
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return 3 * im.width * im.height
    except Image.DecompressionBombError:
        return _ABOVE_ANY_BUDGET
    except Exception:  # any unreadable file: _read says why, in the message of that image
        return 0
