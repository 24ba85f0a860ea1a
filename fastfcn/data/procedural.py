"""``ProceduralScenes``: an offline segmentation dataset generated on the fly (no files, any size, any count)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .base import SegmentationDataset, Transform
from .scene import CLASSES, COLOURS, SCENE_VERSION, render_scene

__all__ = ["ProceduralScenes", "SCENE_VERSION", "SPLIT_CODES", "validation_scenes"]

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
DEFAULT_NUM_IMAGES = {"train": 1000, "val": 200, "test": 200}


class ProceduralScenes(SegmentationDataset):
    """Outdoor scenes with textured stuff, objects at many scales, thin structures and a context class.

    Image ``i`` of a split is a pure function of ``(seed, split, i)`` and the image size: the same arguments give
    the same pixels in any process, and the splits never share a scene (within one :attr:`version` of the drawing
    code). See :mod:`fastfcn.data.scene` for what is drawn and why. ``image_size`` is an int (square) or
    ``(height, width)``.
    """

    name = "procedural"
    # which drawing of the scenes this is: a key for anything trained or cached on them (see scene.SCENE_VERSION)
    version = SCENE_VERSION

    def __init__(self, split: str = "train", num_images: int | None = None,
                 image_size: int | tuple[int, int] = 128, seed: int = 0,
                 transform: Transform | None = None) -> None:
        if split not in SPLIT_CODES:
            raise ValueError(f"unknown split {split!r} for the procedural dataset; choose one of {list(SPLIT_CODES)}")
        super().__init__(split, transform)
        self.classes = list(CLASSES)
        self.colours = COLOURS  # display colours, see fastfcn.data.colorize
        self.num_images = DEFAULT_NUM_IMAGES[split] if num_images is None else int(num_images)
        if self.num_images < 0:
            raise ValueError(f"num_images must be >= 0, got {num_images}")
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.num_images

    def generate(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Scene ``index`` as numpy arrays ``(uint8 [H, W, 3], int64 [H, W])``."""
        rng = np.random.default_rng((self.seed, SPLIT_CODES[self.split], index))
        return render_scene(rng, *self.image_size)

    def load(self, index: int) -> tuple[Tensor, Tensor]:
        image, mask = self.generate(index)
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(mask)


def validation_scenes(count: int, size: int, seed: int = 0) -> torch.Tensor:
    """The first ``count`` scenes of the procedural validation set at ``size`` x ``size``, normalised with
    MEAN/STD: a float tensor ``[count, 3, size, size]``, the same on every machine (for comparing the
    labels of two ways of running one model)."""
    from .transforms import normalize

    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"the label comparison needs at least one image, got images={count!r}")
    scenes = ProceduralScenes("val", num_images=count, image_size=size, seed=seed)
    rgb = np.stack([scenes.generate(i)[0] for i in range(count)])
    return normalize(torch.from_numpy(rgb).permute(0, 3, 1, 2))
