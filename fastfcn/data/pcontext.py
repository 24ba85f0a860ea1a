"""Pascal Context on the prepared layout (``data/prepare_pcontext.py``): 59 classes, or 60 with background.

Layout under ``root``::

    VOCdevkit/VOC2010/JPEGImages/<id>.jpg
    VOCdevkit/VOC2010/SegmentationClassContext/<id>.png   # 0 = background, 1..59 = PCONTEXT_CLASSES
    VOCdevkit/VOC2010/ImageSets/SegmentationContext/{train,val}.txt

``name="pcontext"`` (the paper's Table 1 protocol): 59 classes, background ignored (PNG 0 -> 255, k -> k-1).
``name="pcontext60"`` (Table 3): 60 classes, class 0 = background, PNG values kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from .base import IGNORE_INDEX, SegmentationDataset, Transform, read_pair
from .errors import default_root, missing
from .pcontext_classes import PCONTEXT60_CLASSES, PCONTEXT_CLASSES

__all__ = ["PascalContext", "VOC_DIR", "IMAGE_DIR", "MASK_DIR", "SPLIT_DIR", "EXPECTED_SIZES"]

VOC_DIR = Path("VOCdevkit") / "VOC2010"
IMAGE_DIR = "JPEGImages"
MASK_DIR = "SegmentationClassContext"
SPLIT_DIR = Path("ImageSets") / "SegmentationContext"
EXPECTED_SIZES = {"train": 4998, "val": 5105}


class PascalContext(SegmentationDataset):
    """Pascal Context from ``<root>/VOCdevkit/VOC2010`` (``root`` may also be that VOC2010 folder itself).

    ``background=False`` -> 59 classes (``name == "pcontext"``), ``True`` -> 60 (``"pcontext60"``).
    ``max_images`` keeps the first N of the split list for quick runs.
    """

    def __init__(self, split: str = "train", root: str | Path | None = None, background: bool = False,
                 transform: Transform | None = None, max_images: int | None = None) -> None:
        if split not in ("train", "val", "trainval"):
            raise ValueError(f"unknown split {split!r} for Pascal Context; choose one of ['train', 'val', 'trainval']")
        super().__init__(split, transform)
        self.background = background
        self.name = "pcontext60" if background else "pcontext"
        self.classes = list(PCONTEXT60_CLASSES if background else PCONTEXT_CLASSES)
        base = Path(root) if root is not None else default_root()
        voc = base if (base / IMAGE_DIR).is_dir() or (base / MASK_DIR).is_dir() else base / VOC_DIR
        self.root = voc
        image_dir, mask_dir = voc / IMAGE_DIR, voc / MASK_DIR
        if not image_dir.is_dir():
            raise missing(self.name, "image folder", image_dir)
        if not mask_dir.is_dir():
            raise missing(self.name, "label folder (made by data/prepare_pcontext.py)", mask_dir)
        ids: list[str] = []
        for part in ("train", "val") if split == "trainval" else (split,):
            list_file = voc / SPLIT_DIR / f"{part}.txt"
            if not list_file.is_file():
                raise missing(self.name, "split list (made by data/prepare_pcontext.py)", list_file)
            ids += [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
        if max_images is not None:
            ids = ids[:max_images]
        self.ids = ids
        self.images = [image_dir / f"{i}.jpg" for i in ids]
        self.masks = [mask_dir / f"{i}.png" for i in ids]
        # a listed pair with a file missing is left out and named by the up-front check (fastfcn.data.check);
        # with none present the dataset was not extracted or prepared: say how to get it
        self.listing_problems: list[tuple[str, Path, str]] = []
        for image, mask in zip(self.images, self.masks, strict=True):
            if not image.is_file():
                self.listing_problems.append(("missing image", image, "listed in the split file"))
            elif not mask.is_file():
                self.listing_problems.append(("missing mask", mask, "listed in the split file; "
                                              "data/prepare_pcontext.py writes it"))
        if ids and len(self.listing_problems) == len(ids):
            raise missing(self.name, f"every one of the {len(ids)} image/label pairs listed in the split file "
                          "(the first)", self.listing_problems[0][1])
        kept = [i for i, (image, mask) in enumerate(zip(self.images, self.masks, strict=True))
                if image.is_file() and mask.is_file()]
        self.ids = [ids[i] for i in kept]
        self.images, self.masks = [self.images[i] for i in kept], [self.masks[i] for i in kept]
        lut = np.full(256, IGNORE_INDEX, dtype=np.int64)
        if background:
            lut[:60] = np.arange(60)
        else:
            lut[1:60] = np.arange(59)
        self._lut = self.label_lut = lut
        # the prepared PNGs hold 0 (background) .. 59; raw Pascal Context ids (up to 458) are refused by the check
        self.valid_labels = np.zeros(256, dtype=bool)
        self.valid_labels[:60] = True

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[Tensor, Tensor]:
        return read_pair(self.images[index], self.masks[index], self._lut)
