"""Your own data: a folder of images and label masks, in the layout mmsegmentation and PaddleSeg users know.

Layout under ``root``::

    classes.txt                  # one class per line: NAME, or NAME R G B, or NAME #RRGGBB (its colour)
    images/train/NAME.jpg        # any image Pillow reads (.jpg, .png, ...)
    images/val/NAME.png
    masks/train/NAME.png         # single-channel class indices 0..K-1 (mode L / I;16), or a palette PNG
    masks/val/NAME.png           # whose pixel values are the indices; IGNORE (255 unless told) = ignored

Without ``images/val`` the pairs of ``images/train`` (or of ``images/`` itself, with ``masks/`` beside it) are
divided into the splits: by the lists ``splits/train.txt`` / ``splits/val.txt`` (one NAME per line) where they
exist, else at random with a fixed seed (``val_fraction`` of them, 0.2 by default, to val). An image without a
mask, a mask without an image and two images of one NAME are not paired; :mod:`fastfcn.data.check` reports them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from torch import Tensor

from .base import IGNORE_INDEX, SegmentationDataset, Transform, read_pair
from .errors import default_root
from .images import image_extensions
from .palette import palette

__all__ = ["FolderDataset", "read_classes", "FOLDER_SPLITS", "MAX_FOLDER_CLASSES", "SPLIT_SEED"]

FOLDER_SPLITS = ("train", "val")
MAX_FOLDER_CLASSES = 255  # class ids must stay below the internal ignore id (255)
SPLIT_SEED = 0  # the seeded division into train/val when there is no val folder: the same in every run
DEFAULT_VAL_FRACTION = 0.2
_HEX = re.compile(r"^#([0-9a-fA-F]{6})$")


def _colour(tokens: list[str]) -> tuple[list[int] | None, int]:
    """The colour at the end of a classes.txt line and how many tokens it took (0: none)."""
    if tokens and _HEX.match(tokens[-1]):
        value = int(tokens[-1][1:], 16)
        return [value >> 16, (value >> 8) & 255, value & 255], 1
    if len(tokens) >= 4 and all(t.isdigit() for t in tokens[-3:]):
        rgb = [int(t) for t in tokens[-3:]]
        if all(0 <= v <= 255 for v in rgb):
            return rgb, 3
    return None, 0


def read_classes(path: Path) -> tuple[list[str], np.ndarray]:
    """Class names and ``uint8 [K, 3]`` colours from ``classes.txt`` (a class without a colour gets the default
    palette's). Blank lines are skipped; a name may hold spaces (``traffic light 250 170 30``)."""
    if not path.is_file():
        raise FileNotFoundError(2, "classes.txt not found: the folder dataset needs one class name per line "
                                "(optionally followed by R G B or #RRGGBB)", str(path))
    names: list[str] = []
    colours: list[list[int] | None] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        colour, used = _colour(tokens)
        name = " ".join(tokens[: len(tokens) - used])
        if not name:
            raise ValueError(f"{path}:{number}: a colour without a class name ({line.strip()!r})")
        if name in names:
            raise ValueError(f"{path}:{number}: class {name!r} is listed twice (first on another line)")
        names.append(name)
        colours.append(colour)
    if not names:
        raise ValueError(f"{path} lists no classes; write one class name per line")
    if len(names) > MAX_FOLDER_CLASSES:
        raise ValueError(f"{path} lists {len(names)} classes; the folder dataset takes at most {MAX_FOLDER_CLASSES}")
    defaults = palette(len(names))
    table = np.array([c if c is not None else defaults[i] for i, c in enumerate(colours)], dtype=np.uint8)
    return names, table


def _images_by_name(folder: Path) -> tuple[dict[str, Path], list[Path]]:
    """Image files of ``folder`` by name (file name without extension), and the files whose name is taken twice."""
    extensions = image_extensions()
    found: dict[str, Path] = {}
    duplicates: list[Path] = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.suffix.lower() not in extensions or not path.is_file():
            continue
        if path.stem in found:
            duplicates.append(path)
        else:
            found[path.stem] = path
    return found, duplicates


def _seeded_names(names: list[str], split: str, val_fraction: float) -> list[str]:
    """This split's share of ``names`` under the fixed seed (val: ``val_fraction``, at least one of two or more)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(names))
    n_val = min(len(names) - 1, max(1, round(val_fraction * len(names)))) if len(names) > 1 else 0
    chosen = order[:n_val] if split == "val" else order[n_val:]
    return [names[i] for i in sorted(chosen)]


class FolderDataset(SegmentationDataset):
    """Images and masks from a folder (see the module docstring for the layout).

    ``ignore_value``: the mask value that marks pixels to leave out (255); it may not be a class id.
    ``val_fraction``: the share of the pairs that goes to val when there is no ``images/val`` folder.
    ``listing_problems`` holds what could not be paired, as ``(kind, path, detail)``.
    """

    name = "folder"

    def __init__(self, split: str = "train", root: str | Path | None = None, transform: Transform | None = None,
                 ignore_value: int | None = None, val_fraction: float | None = None,
                 max_images: int | None = None) -> None:
        if split not in FOLDER_SPLITS:
            raise ValueError(f"unknown split {split!r} for a folder dataset; choose one of {list(FOLDER_SPLITS)}")
        super().__init__(split, transform)
        self.root = Path(root) if root is not None else default_root()
        if not self.root.is_dir():
            raise FileNotFoundError(2, "dataset folder not found (--root)", str(self.root))
        self.classes, self.colours = read_classes(self.root / "classes.txt")
        self.ignore_value = 255 if ignore_value is None else int(ignore_value)
        if 0 <= self.ignore_value < len(self.classes) or not 0 <= self.ignore_value <= 65535:
            raise ValueError(f"the ignore value {self.ignore_value} must be a mask value from "
                             f"{len(self.classes)} to 65535 (0..{len(self.classes) - 1} are the classes of "
                             f"{self.root / 'classes.txt'})")
        self.val_fraction = DEFAULT_VAL_FRACTION if val_fraction is None else float(val_fraction)
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"the val fraction must lie strictly between 0 and 1, got {self.val_fraction}")
        self.listing_problems: list[tuple[str, Path, str]] = []
        self.images, self.masks = self._pairs(split)
        if max_images is not None:
            self.images, self.masks = self.images[:max_images], self.masks[:max_images]
        # raw mask value -> class id; every other value (refused by the check) -> ignored
        lut = np.full(max(len(self.classes), self.ignore_value + 1) + 1, IGNORE_INDEX, dtype=np.int64)
        lut[: len(self.classes)] = np.arange(len(self.classes))
        self.label_lut = lut
        self.valid_labels = np.zeros(len(lut), dtype=bool)
        self.valid_labels[: len(self.classes)] = True
        self.valid_labels[self.ignore_value] = True

    def _folders(self, split: str) -> tuple[Path, Path, bool]:
        """(image folder, mask folder, whether the split is a share of a pool rather than a folder of its own)."""
        images, masks = self.root / "images", self.root / "masks"
        if (images / "val").is_dir():
            return images / split, masks / split, False
        if (images / "train").is_dir():
            return images / "train", masks / "train", True
        if images.is_dir():
            return images, masks, True
        raise FileNotFoundError(2, "image folder not found: expected images/train and images/val (or images/ with "
                                "masks/ beside it) under the dataset folder", str(images))

    def _names(self, split: str, names: list[str]) -> list[str]:
        """The names of ``split`` among the pool's ``names``: its list file if there is one, else the seeded share."""
        list_file = self.root / "splits" / f"{split}.txt"
        if not list_file.is_file():
            return _seeded_names(names, split, self.val_fraction)
        listed = [Path(line.strip()).stem for line in list_file.read_text(encoding="utf-8").splitlines()
                  if line.strip()]
        known = set(names)
        for name in listed:
            if name not in known:
                self.listing_problems.append(("listed, not found", list_file,
                                              f"{name!r} is listed but has no image/mask pair"))
        return [n for n in listed if n in known]

    def _pairs(self, split: str) -> tuple[list[Path], list[Path]]:
        image_dir, mask_dir, pooled = self._folders(split)
        if not image_dir.is_dir():
            raise FileNotFoundError(2, f"image folder of the {split} split not found", str(image_dir))
        if not mask_dir.is_dir():
            raise FileNotFoundError(2, f"mask folder of the {split} split not found", str(mask_dir))
        images, duplicates = _images_by_name(image_dir)
        masks = {p.stem: p for p in sorted(mask_dir.glob("*.png")) if p.is_file()}
        for path in duplicates:
            self.listing_problems.append(("duplicate name", path, f"another image is also named {path.stem!r}"))
        names = sorted(set(images) & set(masks))
        chosen = set(self._names(split, names) if pooled else names)
        for name in sorted(set(images) - set(masks)):
            if not pooled or split == "train":  # a pool's strays are reported once, with the train split
                self.listing_problems.append(("image without a mask", images[name],
                                              f"expected {mask_dir / (name + '.png')}"))
        for name in sorted(set(masks) - set(images)):
            if not pooled or split == "train":
                self.listing_problems.append(("mask without an image", masks[name],
                                              f"no image {name}.* in {image_dir}"))
        ordered = [n for n in names if n in chosen]
        return [images[n] for n in ordered], [masks[n] for n in ordered]

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[Tensor, Tensor]:
        return read_pair(self.images[index], self.masks[index], self.label_lut)
