"""Colours for label maps: a fixed palette per class id, and ``colorize`` (ignored pixels black)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .base import IGNORE_INDEX

__all__ = ["palette", "colorize", "legend_image", "class_colours"]


def palette(num_classes: int) -> np.ndarray:
    """``uint8 [num_classes, 3]`` RGB colours, distinct for the first few hundred ids and never black.

    Class ``k`` gets the PASCAL VOC colour of id ``k + 1`` (bits of the id spread over the high bits of R, G
    and B), so black stays free for ignored pixels.
    """
    ids = np.arange(1, num_classes + 1)
    colours = np.zeros((num_classes, 3), dtype=np.int64)
    for shift in range(7, -1, -1):
        for channel in range(3):
            colours[:, channel] |= ((ids >> channel) & 1) << shift
        ids = ids >> 3
    return colours.astype(np.uint8)


def colorize(mask: Tensor | np.ndarray, num_classes: int = 256,
             colours: np.ndarray | None = None) -> Tensor | np.ndarray:
    """An RGB picture of a label map: ``[..., H, W]`` ids -> ``uint8 [..., H, W, 3]`` (channels last, ready for
    ``plt.imshow``), of the same kind (torch or numpy) as ``mask``. ``IGNORE_INDEX`` and out-of-range ids are black.
    ``colours`` overrides :func:`palette` (e.g. a dataset's own colours).
    """
    table = palette(num_classes) if colours is None else np.asarray(colours, dtype=np.uint8)
    ids = mask.detach().cpu().numpy() if isinstance(mask, Tensor) else np.asarray(mask)
    ids = ids.astype(np.int64)
    valid = (ids >= 0) & (ids < len(table)) & (ids != IGNORE_INDEX)
    rgb = np.where(valid[..., None], table[np.where(valid, ids, 0)], np.uint8(0)).astype(np.uint8)
    return torch.from_numpy(rgb) if isinstance(mask, Tensor) else rgb


def legend_image(classes: list[str], colours: np.ndarray, swatch: int = 20) -> Image.Image:
    """A picture of the classes' colours, one row per class: a swatch and the class id and name (RGB image)."""
    from PIL import ImageDraw

    colours = np.asarray(colours, dtype=np.uint8)
    rows = [f"{k:3d}  {name}" for k, name in enumerate(classes)]
    width = swatch + 16 + 7 * max((len(r) for r in rows), default=1)  # the default bitmap font: ~6 px a letter
    image = Image.new("RGB", (width, max(1, swatch + 4) * max(1, len(rows))), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for k, text in enumerate(rows):
        top = k * (swatch + 4) + 2
        draw.rectangle([4, top, 4 + swatch, top + swatch], fill=tuple(int(v) for v in colours[k]), outline=(0, 0, 0))
        draw.text((swatch + 12, top + swatch // 2 - 5), text, fill=(0, 0, 0))
    return image


def class_colours(num_classes: int, colours: Any = None) -> np.ndarray:
    """A dataset's own class colours (``[num_classes, 3]``, e.g. a checkpoint's ``palette``) where there is one for
    every class, else :func:`palette`."""
    if colours is not None and len(colours) == num_classes:
        return np.asarray(colours, dtype=np.uint8).reshape(num_classes, 3)
    return palette(num_classes)
