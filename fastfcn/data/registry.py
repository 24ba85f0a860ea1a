"""``build_dataset(name, split, root, **kwargs)``: one entry point for every dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .ade20k import ADE20K
from .base import SegmentationDataset
from .cityscapes import Cityscapes
from .folder import FolderDataset
from .pcontext import PascalContext
from .procedural import ProceduralScenes

__all__ = ["DATASETS", "ON_DISK", "build_dataset"]

DATASETS = {
    "procedural": "offline procedural scenes, 8 classes, generated on the fly (the default)",
    "pcontext": "Pascal Context, 59 classes, background ignored (paper Table 1)",
    "pcontext60": "Pascal Context, 60 classes, background = class 0 (paper Table 3)",
    "ade20k": "ADE20K / ADEChallengeData2016, 150 classes, label 0 ignored",
    "cityscapes": "Cityscapes fine annotations (*_gtFine_labelTrainIds.png), 19 classes, 255 ignored",
    "folder": "your own data: DIR/images/{train,val}, DIR/masks/{train,val}, DIR/classes.txt (README: Your own data)",
}
# the datasets read from files, checked pair by pair before a run (fastfcn.data.check)
ON_DISK = ("pcontext", "pcontext60", "ade20k", "cityscapes", "folder")


def build_dataset(name: str, split: str = "train", root: str | Path | None = None,
                  **kwargs: Any) -> SegmentationDataset:
    """The dataset ``name`` (see :data:`DATASETS`) for ``split``.

    ``root`` is the data folder of the real datasets (default ``$FASTFCN_DATA`` or the repository's ``data/``);
    for the procedural set it is optional, the folder where its scenes are drawn once and cached. ``kwargs`` go to the dataset: ``transform=`` for all; ``num_images=``,
    ``image_size=``, ``seed=`` for ``procedural``; ``max_images=`` for the real ones; ``ignore_value=`` and
    ``val_fraction=`` for ``folder``.
    """
    key = name.lower()
    if key == "procedural":
        return ProceduralScenes(split=split, cache_dir=root, **kwargs)
    if key in ("pcontext", "pcontext60"):
        return PascalContext(split=split, root=root, background=key == "pcontext60", **kwargs)
    if key == "ade20k":
        return ADE20K(split=split, root=root, **kwargs)
    if key == "cityscapes":
        return Cityscapes(split=split, root=root, **kwargs)
    if key == "folder":
        return FolderDataset(split=split, root=root, **kwargs)
    raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
