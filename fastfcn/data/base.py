"""The dataset contract shared by every loader: ``(uint8 image [3, H, W], int64 mask [H, W])`` pairs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from .images import read_rgb

__all__ = ["IGNORE_INDEX", "DatasetNotFoundError", "SegmentationDataset", "Transform", "read_image", "read_label"]

# Pixels with this label are left out of the loss and the metrics.
IGNORE_INDEX = 255

Transform = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset (or part of it) is not on disk; the message says what is missing and how to get it."""


class SegmentationDataset(Dataset):
    """Base class: subclasses set the attributes below and implement ``__len__`` and ``load``.

    ``dataset[i]`` returns ``(image, mask)``: ``image`` a ``torch.uint8`` tensor ``[3, H, W]`` (RGB) and ``mask``
    a ``torch.int64`` tensor ``[H, W]`` holding class ids ``0..num_classes-1`` or ``IGNORE_INDEX``. With a
    ``transform`` the pair goes through it first (e.g. :class:`fastfcn.data.transforms.TrainTransform`).
    """

    name: str = "dataset"
    classes: list[str]
    ignore_index: int = IGNORE_INDEX

    def __init__(self, split: str, transform: Transform | None = None) -> None:
        self.split = split
        self.transform = transform

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int) -> tuple[Tensor, Tensor]:
        """The untransformed pair for ``0 <= index < len(self)``."""
        raise NotImplementedError

    def exclude(self, indices: set[int]) -> None:
        """Leave out the pairs at ``indices`` (an on-disk dataset's bad pairs, ``--skip-bad``)."""
        for attribute in ("images", "masks", "ids"):
            files = getattr(self, attribute, None)
            if files is not None:
                setattr(self, attribute, [f for i, f in enumerate(files) if i not in indices])

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {self.name} {self.split} ({n} images)")
        image, mask = self.load(index)
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, images={len(self)}, "
                f"classes={self.num_classes})")


def read_image(path: str | Path) -> Tensor:
    """An image file as a ``torch.uint8`` RGB tensor ``[3, H, W]`` (:func:`fastfcn.data.images.read_rgb`,
    pixels as stored: the label map is drawn on them, whatever the EXIF orientation says)."""
    array = read_rgb(path, exif_orientation=False)
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def read_label(path: str | Path) -> np.ndarray:
    """A single-channel label PNG (mode ``L``, ``P`` or 16-bit) as its raw integer values ``[H, W]``."""
    with Image.open(path) as im:
        if im.mode not in ("L", "P", "I", "I;16"):
            raise ValueError(f"{path}: expected a single-channel label PNG, got mode {im.mode}")
        return np.asarray(im).copy()


def read_pair(image_path: str | Path, label_path: str | Path, lut: np.ndarray) -> tuple[Tensor, Tensor]:
    """An image and its label PNG, the raw label values mapped to our class ids through ``lut``."""
    image = read_image(image_path)
    raw = read_label(label_path)
    if raw.shape != tuple(image.shape[-2:]):
        raise ValueError(f"{label_path}: size {raw.shape} differs from its image {tuple(image.shape[-2:])}")
    return image, torch.from_numpy(lut[raw.clip(0, len(lut) - 1)])
