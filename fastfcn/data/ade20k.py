"""ADE20K (MIT Scene Parsing 2016, ``ADEChallengeData2016``): 150 classes, label 0 ("other") ignored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from .base import IGNORE_INDEX, SegmentationDataset, Transform, read_pair
from .errors import default_root, missing

__all__ = ["ADE20K", "ADE20K_CLASSES"]

# The 150 classes of the scene-parsing benchmark, in label order 1..150 (short names).
ADE20K_CLASSES = [
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair",
    "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion",
    "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper",
    "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table", "pillow",
    "screen door", "stairway", "river", "bridge", "bookcase", "blind", "coffee table", "toilet", "flower",
    "book", "hill", "bench", "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair",
    "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track", "apparel", "pole",
    "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship",
    "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel",
    "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket",
    "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen",
    "plate", "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
]
assert len(ADE20K_CLASSES) == 150

FOLDER = "ADEChallengeData2016"
SPLIT_FOLDERS = {"train": ["training"], "val": ["validation"], "trainval": ["training", "validation"]}
EXPECTED_SIZES = {"train": 20210, "val": 2000, "trainval": 22210}

# annotation value v -> class v - 1; 0 ("other objects") -> ignore
_LUT = np.full(256, IGNORE_INDEX, dtype=np.int64)
_LUT[1:151] = np.arange(150)
_VALID = np.zeros(256, dtype=bool)
_VALID[:151] = True  # 0 (other, ignored) .. 150; anything else (a 16-bit or another dataset's mask) is refused


class ADE20K(SegmentationDataset):
    """``<root>/ADEChallengeData2016/images/<training|validation>/ADE_*.jpg`` with the same-named ``.png``
    annotations under ``annotations/``. ``root`` may also be the ``ADEChallengeData2016`` folder itself.
    ``max_images`` keeps the first N (sorted by name) for quick runs."""

    name = "ade20k"

    def __init__(self, split: str = "train", root: str | Path | None = None, transform: Transform | None = None,
                 max_images: int | None = None) -> None:
        if split not in SPLIT_FOLDERS:
            raise ValueError(f"unknown split {split!r} for ADE20K; choose one of {list(SPLIT_FOLDERS)}")
        super().__init__(split, transform)
        self.classes = list(ADE20K_CLASSES)
        base = Path(root) if root is not None else default_root()
        if not (base / "images").is_dir():
            base = base / FOLDER
        if not base.is_dir():
            raise missing("ade20k", "dataset folder", base)
        self.root = base
        self.label_lut, self.valid_labels = _LUT, _VALID
        self.images: list[Path] = []
        self.masks: list[Path] = []
        self.listing_problems: list[tuple[str, Path, str]] = []
        for sub in SPLIT_FOLDERS[split]:
            image_dir, mask_dir = base / "images" / sub, base / "annotations" / sub
            for folder, what in ((image_dir, "image folder"), (mask_dir, "annotation folder")):
                if not folder.is_dir():
                    raise missing("ade20k", what, folder)
            images = sorted(image_dir.glob("*.jpg"))
            if not images:
                raise missing("ade20k", "images (*.jpg)", image_dir)
            masks = [mask_dir / (p.stem + ".png") for p in images]
            present = [m.is_file() for m in masks]
            if not any(present):
                raise missing("ade20k", f"every one of the {len(masks)} annotation files (the first)", masks[0])
            # an image without its annotation is left out and named by the up-front check (fastfcn.data.check)
            self.listing_problems += [("image without a mask", image, f"expected {mask}")
                                      for image, mask, ok in zip(images, masks, present, strict=True) if not ok]
            self.images += [image for image, ok in zip(images, present, strict=True) if ok]
            self.masks += [mask for mask, ok in zip(masks, present, strict=True) if ok]
        if max_images is not None:
            self.images, self.masks = self.images[:max_images], self.masks[:max_images]

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[Tensor, Tensor]:
        return read_pair(self.images[index], self.masks[index], _LUT)
