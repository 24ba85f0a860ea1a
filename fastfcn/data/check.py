"""The up-front check of an on-disk dataset: every pair is looked at before the first iteration.

:func:`check_dataset` finds, for one split, what would otherwise stop a run mid-epoch or silently spoil it:
images without a mask and masks without an image, unreadable files, an image and mask of different sizes,
mask values that are neither a class nor the ignore value (with the value and its pixel count), and an empty
split. It reads only the header of each image (its size; the file's end is checked for truncation, and a
truncated-looking file is decoded to be sure) and each mask in full (its values). The files are read by a few
threads: decoding PNGs releases the GIL. The :class:`DataReport` also counts the pixels of every class and
sums up the image sizes, for ``fastfcn data check``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..utils.text import PRINT_WIDTH
from .base import IGNORE_INDEX, read_label

__all__ = ["DataProblem", "DataReport", "DataCheckError", "check_dataset", "check_or_raise", "SHOWN_PER_KIND"]

SHOWN_PER_KIND = 3  # files named per kind of problem in the report (the JSON has them all)
_TRAILERS = {"JPEG": (b"\xff\xd9",), "PNG": (b"IEND\xaeB`\x82",)}
_READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError, MemoryError)


@dataclass
class DataProblem:
    """One thing wrong with one file: its ``kind`` (e.g. ``"labels out of range"``), the file, the details,
    and the index of its pair in the dataset (None for a file that is in no pair)."""

    kind: str
    path: Path
    detail: str
    index: int | None = None


def _file_line(problem: DataProblem) -> str:
    """``    PATH: DETAIL``, the details on a line of their own under the path where both would not fit a page."""
    if not problem.detail:
        return f"    {problem.path}"
    line = f"    {problem.path}: {problem.detail}"
    return line if len(line) <= PRINT_WIDTH else f"    {problem.path}:\n      {problem.detail}"


@dataclass
class DataReport:
    """What :func:`check_dataset` found in one split: the problems, and statistics of the good pairs."""

    dataset: str
    split: str
    root: str
    pairs: int
    problems: list[DataProblem] = field(default_factory=list)
    class_pixels: dict[str, int] = field(default_factory=dict)
    ignored_pixels: int = 0
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (width, height) of every readable image

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_indices(self) -> set[int]:
        return {p.index for p in self.problems if p.index is not None}

    def describe(self) -> str:
        """The readable report: a headline, then per kind of problem its count and the first files named."""
        bad = len(self.bad_indices)
        head = (f"{self.dataset} {self.split} split ({self.root}): {len(self.problems)} problem(s)"
                f"{f', {bad} of {self.pairs} image/mask pairs unusable' if bad else ''}")
        lines = [head]
        kinds: dict[str, list[DataProblem]] = {}
        for problem in self.problems:
            kinds.setdefault(problem.kind, []).append(problem)
        for kind, found in kinds.items():  # one file a line: a path and its details fill one already
            lines.append(f"  {kind} ({len(found)}):")
            lines += [_file_line(p) for p in found[:SHOWN_PER_KIND]]
            if len(found) > SHOWN_PER_KIND:
                lines.append(f"    ... and {len(found) - SHOWN_PER_KIND} more")
        return "\n".join(lines)

    def size_statistics(self) -> dict[str, Any]:
        if not self.sizes:
            return {"images": 0}
        widths = np.array([w for w, _ in self.sizes])
        heights = np.array([h for _, h in self.sizes])
        distinct = len(set(self.sizes))
        return {"images": len(self.sizes), "distinct_sizes": distinct,
                "width": {"min": int(widths.min()), "median": float(np.median(widths)), "max": int(widths.max())},
                "height": {"min": int(heights.min()), "median": float(np.median(heights)),
                           "max": int(heights.max())}}

    def to_json(self) -> dict[str, Any]:
        total = sum(self.class_pixels.values())
        return {"dataset": self.dataset, "split": self.split, "root": self.root, "pairs": self.pairs,
                "ok": self.ok, "problems": [{"kind": p.kind, "path": str(p.path), "detail": p.detail}
                                            for p in self.problems],
                "class_pixels": self.class_pixels,
                "class_frequency": {k: (v / total if total else 0.0) for k, v in self.class_pixels.items()},
                "ignored_pixels": self.ignored_pixels, "image_sizes": self.size_statistics()}


class DataCheckError(ValueError):
    """A dataset failed its up-front check; the message is the whole report (several lines)."""

    def __init__(self, reports: Sequence[DataReport], advice: str) -> None:
        self.reports = list(reports)
        super().__init__("\n".join([*(r.describe() for r in reports if not r.ok), advice]))


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header; a file whose end is not its format's end marker is decoded to be sure."""
    guess = Image.registered_extensions().get(path.suffix.lower())
    try:  # the format its name says is tried first: Pillow's trying every format costs more than the header
        im = Image.open(path, formats=[guess] if guess else None)
    except UnidentifiedImageError:
        if guess is None:
            raise
        im = Image.open(path)  # a file named after another format
    with im:
        size, trailers = im.size, _TRAILERS.get(im.format or "")
        if trailers and im.fp is not None:
            end = im.fp.seek(0, os.SEEK_END)
            im.fp.seek(max(0, end - 64))
            tail = im.fp.read().rstrip(b"\x00\r\n ")
            if not tail.endswith(trailers):
                im.fp.seek(0)
                im.load()  # raises for a truncated file; some writers append bytes after the end marker
    return size


def _check_pair(index: int, image: Path, mask: Path, valid: np.ndarray
                ) -> tuple[list[DataProblem], tuple[int, int] | None, np.ndarray | None]:
    """(problems, image size, raw value counts of the mask) of one pair."""
    problems: list[DataProblem] = []
    size = counts = None
    try:
        size = _image_size(image)
    except FileNotFoundError:
        problems.append(DataProblem("missing image", image, "", index))
    except _READ_ERRORS as exc:
        problems.append(DataProblem("unreadable image", image, _reason(exc, image), index))
    try:
        raw = read_label(mask)
    except FileNotFoundError:
        return [*problems, DataProblem("missing mask", mask, "", index)], size, None
    except _READ_ERRORS as exc:
        return [*problems, DataProblem("unreadable mask", mask, _reason(exc, mask), index)], size, None
    if size is not None and raw.shape != (size[1], size[0]):
        problems.append(DataProblem("size mismatch", mask, f"mask {raw.shape[1]}x{raw.shape[0]}, image "
                                    f"{size[0]}x{size[1]} ({image.name})", index))
    if raw.size and raw.min() < 0:  # a 32-bit mask can hold what no class id is
        return [*problems, DataProblem("labels out of range", mask, f"negative values (down to {raw.min()})",
                                       index)], size, None
    counts = np.bincount(raw.ravel().astype(np.int64, copy=False)) if raw.size else np.zeros(0, np.int64)
    values = np.flatnonzero(counts)
    bad = values[(values >= len(valid)) | ~valid[np.minimum(values, len(valid) - 1)]]
    if len(bad):
        listed = ", ".join(f"value {v} ({counts[v]} px)" for v in bad[:4])
        more = f" and {len(bad) - 4} more values" if len(bad) > 4 else ""
        problems.append(DataProblem("labels out of range", mask, listed + more, index))
    return problems, size, counts


def _reason(exc: BaseException, path: Path) -> str:
    """What went wrong, without the file name the report puts in front of it anyway."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    text = " ".join(text.split()).removeprefix(f"{path}: ")
    return text[:160] or type(exc).__name__


def _allowed_values(dataset: Any) -> str:
    valid = np.flatnonzero(dataset.valid_labels)
    runs, start = [], valid[0]
    for prev, cur in zip(valid, [*valid[1:], None], strict=True):
        if cur is None or cur != prev + 1:
            runs.append(f"{start}..{prev}" if prev > start else f"{start}")
            start = cur
    return ", ".join(runs)


def check_dataset(dataset: Any, workers: int | None = None) -> DataReport:
    """Check every pair of an on-disk dataset (it has ``images``, ``masks``, ``label_lut``, ``valid_labels``)."""
    images, masks = list(dataset.images), list(dataset.masks)
    report = DataReport(getattr(dataset, "name", "dataset"), dataset.split, str(getattr(dataset, "root", "")),
                        len(images))
    report.problems += [DataProblem(kind, path, detail) for kind, path, detail in
                        getattr(dataset, "listing_problems", [])]
    if not images:
        report.problems.append(DataProblem("empty split", Path(report.root), "no image/mask pairs in this split"))
        return report
    lut, valid = np.asarray(dataset.label_lut), np.asarray(dataset.valid_labels, dtype=bool)
    pixels = np.zeros(len(lut), dtype=np.int64)
    threads = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = pool.map(_check_pair, range(len(images)), images, masks, [valid] * len(images))
        for problems, size, counts in results:
            report.problems += problems
            if size is not None:
                report.sizes.append(size)
            if counts is not None and not problems:
                kept = counts[: len(lut)]
                pixels[: len(kept)] += kept
    ids = lut[: len(pixels)]
    classes = list(dataset.classes)
    per_class = np.bincount(ids[ids != IGNORE_INDEX], weights=pixels[ids != IGNORE_INDEX], minlength=len(classes))
    report.class_pixels = {name: int(per_class[i]) for i, name in enumerate(classes)}
    report.ignored_pixels = int(pixels[ids == IGNORE_INDEX].sum())
    for problem in report.problems:
        if problem.kind == "labels out of range":
            problem.detail += f"; allowed: {_allowed_values(dataset)}"
    return report


def check_or_raise(datasets: Sequence[Any], skip_bad: bool, command: str,
                   warn: Any = None) -> list[DataReport]:
    """Check ``datasets``; with problems raise :class:`DataCheckError` (nothing done yet), or with ``skip_bad``
    leave the bad pairs out (``warn(report text)`` says which) unless that leaves a split empty."""
    reports = [check_dataset(d) for d in datasets]
    if all(r.ok for r in reports):
        return reports
    empty = any(r.pairs - len(r.bad_indices) <= 0 for r in reports)
    if not skip_bad or empty:
        advice = (f"Nothing was {command} or written. Fix or remove these files"
                  + (", or pass --skip-bad to go on without the bad pairs" if not empty else "")
                  + "; `fastfcn data check` lists them all (--json).")
        raise DataCheckError(reports, advice)
    for dataset, report in zip(datasets, reports, strict=True):
        if not report.ok:
            dataset.exclude(report.bad_indices)
            if warn is not None:
                warn(f"--skip-bad: going on without {len(report.bad_indices)} pair(s) of the {report.split} split "
                     f"({len(dataset)} left):\n{report.describe()}")
    return reports
