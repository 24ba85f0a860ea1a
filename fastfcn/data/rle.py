"""Run-length encoded masks as in COCO-style JSON (used by the PASCAL in Detail / Pascal Context annotations).

A mask of ``size = [height, width]`` is flattened column by column (Fortran order) into alternating runs of 0s
and 1s, starting with 0s. ``counts`` is either the list of run lengths ("uncompressed RLE") or a string
("compressed RLE"): each run, from the fourth on stored as the difference to the run two places before, is
written in 5-bit groups, low bits first, each group + 48 as one character; bit 0x20 says "more groups follow",
bit 0x10 of the last group is the sign. Pure numpy, no pycocotools.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["decode_counts", "encode_counts", "decode", "encode", "decode_segmentation"]


def decode_counts(text: str | bytes) -> list[int]:
    """Compressed ``counts`` string -> run lengths."""
    data = text.encode("ascii") if isinstance(text, str) else bytes(text)
    counts: list[int] = []
    p = 0
    while p < len(data):
        value, shift, more = 0, 0, True
        while more:
            if p >= len(data):
                raise ValueError("truncated RLE counts string")
            c = data[p] - 48
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            p += 1
            shift += 5
            if not more and c & 0x10:
                value -= 1 << shift  # negative: sign-extend
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def encode_counts(counts: Sequence[int]) -> str:
    """Run lengths -> compressed ``counts`` string (inverse of :func:`decode_counts`)."""
    out = bytearray()
    for i, run in enumerate(counts):
        x = int(run) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative numbers end at -1
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(c + 48)
    return out.decode("ascii")


def decode(rle: dict[str, Any]) -> np.ndarray:
    """``{"size": [h, w], "counts": str | list[int]}`` -> bool mask ``[h, w]``."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    runs = decode_counts(counts) if isinstance(counts, str | bytes) else [int(c) for c in counts]
    if sum(runs) != h * w:
        raise ValueError(f"RLE runs cover {sum(runs)} pixels, size {h}x{w} has {h * w}")
    values = np.arange(len(runs)) % 2 == 1
    flat = np.repeat(values, runs)
    return flat.reshape((h, w), order="F")


def encode(mask: np.ndarray, compressed: bool = True) -> dict[str, Any]:
    """Bool/0-1 mask ``[h, w]`` -> RLE dict (compressed string counts by default)."""
    mask = np.asarray(mask).astype(bool)
    flat = mask.reshape(-1, order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0] + runs
    return {"size": [int(mask.shape[0]), int(mask.shape[1])],
            "counts": encode_counts(runs) if compressed else runs}


def decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """A ``segmentation`` field -> bool mask ``[height, width]``: an RLE dict, or a list of polygons
    ``[[x1, y1, x2, y2, ...], ...]`` (filled with PIL)."""
    if isinstance(segmentation, dict):
        mask = decode(segmentation)
        if mask.shape != (height, width):
            raise ValueError(f"RLE size {mask.shape} differs from the image size {(height, width)}")
        return mask
    if isinstance(segmentation, list):
        from PIL import Image, ImageDraw

        canvas = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(canvas)
        for poly in segmentation:
            if len(poly) >= 6:
                draw.polygon([(float(poly[k]), float(poly[k + 1])) for k in range(0, len(poly) - 1, 2)], fill=1)
        return np.asarray(canvas, dtype=bool)
    raise ValueError(f"unsupported segmentation format: {type(segmentation).__name__}")
