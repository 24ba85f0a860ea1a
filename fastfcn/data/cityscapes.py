"""Cityscapes (fine annotations): 19 training classes, 255 ignored, the benchmark of mmsegmentation's FastFCN.

Layout under ``root`` (as downloaded; the ``*_labelTrainIds.png`` are made by the official cityscapesScripts
``createTrainIdLabelImgs.py``)::

    leftImg8bit/{train,val,test}/CITY/CITY_SEQ_FRAME_leftImg8bit.png
    gtFine/{train,val,test}/CITY/CITY_SEQ_FRAME_gtFine_labelTrainIds.png   # 0..18, 255 = ignore
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from .base import IGNORE_INDEX, DatasetNotFoundError, SegmentationDataset, Transform, read_pair
from .errors import default_root

__all__ = ["Cityscapes", "CITYSCAPES_CLASSES", "CITYSCAPES_COLOURS"]

CITYSCAPES_CLASSES = [
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
]
# the colours of the official cityscapesScripts labels.py, in train-id order
CITYSCAPES_COLOURS = np.array([
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0),
    (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
], dtype=np.uint8)
IMAGE_SUFFIX, LABEL_SUFFIX = "_leftImg8bit.png", "_gtFine_labelTrainIds.png"
SPLITS = ("train", "val", "test")

_HOWTO = ("Download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from https://www.cityscapes-dataset.com/"
          " (free registration), unzip both into the data root, then make the train-id labels with the official "
          "scripts: pip install cityscapesscripts; CITYSCAPES_DATASET=<root> csCreateTrainIdLabelImgs")


class Cityscapes(SegmentationDataset):
    """The fine-annotated Cityscapes images of ``split``, sorted by city and file name; ``root`` is the folder
    holding ``leftImg8bit/`` and ``gtFine/``. An image without its ``*_gtFine_labelTrainIds.png`` is named by
    :mod:`fastfcn.data.check` (``listing_problems``)."""

    name = "cityscapes"

    def __init__(self, split: str = "train", root: str | Path | None = None, transform: Transform | None = None,
                 max_images: int | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r} for Cityscapes; choose one of {list(SPLITS)}")
        super().__init__(split, transform)
        self.classes = list(CITYSCAPES_CLASSES)
        self.colours = CITYSCAPES_COLOURS
        self.root = Path(root) if root is not None else default_root()
        image_dir, label_dir = self.root / "leftImg8bit" / split, self.root / "gtFine" / split
        for folder, what in ((image_dir, "image folder"), (label_dir, "annotation folder")):
            if not folder.is_dir():
                raise DatasetNotFoundError(f"cityscapes: {what} not found: {folder}\n{_HOWTO}")
        self.listing_problems: list[tuple[str, Path, str]] = []
        self.images, self.masks = [], []
        for image in sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}")):
            label = label_dir / image.parent.name / (image.name[: -len(IMAGE_SUFFIX)] + LABEL_SUFFIX)
            if label.is_file():
                self.images.append(image)
                self.masks.append(label)
            else:
                self.listing_problems.append(("image without a mask", image, f"expected {label}"))
        if max_images is not None:
            self.images, self.masks = self.images[:max_images], self.masks[:max_images]
        lut = np.full(256, IGNORE_INDEX, dtype=np.int64)
        lut[:19] = np.arange(19)
        self.label_lut = lut
        self.valid_labels = np.zeros(256, dtype=bool)
        self.valid_labels[:19] = True
        self.valid_labels[255] = True

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[Tensor, Tensor]:
        return read_pair(self.images[index], self.masks[index], self.label_lut)
