"""``ProceduralScenes``: an offline segmentation dataset generated on the fly (no files, any size, any count).

Drawing a scene costs about 8 ms on a 2-core CPU, as much as a tenth of a small network's training step. With a
``cache_dir`` the split is drawn once and kept in one ``.npz`` file named after everything that decides its pixels
(generator version, split, seed, count, size): every later training on the same scenes, in any process, reads
them from there instead of drawing them again.
"""

from __future__ import annotations

import io
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..utils.threads import usable_cpus
from .base import SegmentationDataset, Transform
from .scene import CLASSES, COLOURS, SCENE_VERSION, render_scene

__all__ = ["ProceduralScenes", "SCENE_VERSION", "SPLIT_CODES", "validation_scenes"]

# "pretrain": the scenes the book's shared trunk is pretrained on, never used by a Table 1 row (its ImageNet)
SPLIT_CODES = {"train": 0, "val": 1, "test": 2, "pretrain": 3}
DEFAULT_NUM_IMAGES = {"train": 1000, "val": 200, "test": 200, "pretrain": 2000}
# a split of at least this many scenes is drawn in parallel processes, DRAW_CHUNK scenes per task (a process
# costs ~0.1 s to start; a scene ~8 ms to draw)
PARALLEL_DRAW_MIN = 200
DRAW_CHUNK = 100


class ProceduralScenes(SegmentationDataset):
    """Outdoor scenes with textured stuff, objects at many scales, thin structures and a context class.

    Image ``i`` of a split is a pure function of ``(seed, split, i)`` and the image size: the same arguments give
    the same pixels in any process, and the splits never share a scene (within one :attr:`version` of the drawing
    code). See :mod:`fastfcn.data.scene` for what is drawn and why. ``image_size`` is an int (square) or
    ``(height, width)``. ``cache_dir``: draw the whole split once into a file there and read it from then on
    (the same pixels as drawing them; see the module's docstring).
    """

    name = "procedural"
    # which drawing of the scenes this is: a key for anything trained or cached on them (see scene.SCENE_VERSION)
    version = SCENE_VERSION

    def __init__(self, split: str = "train", num_images: int | None = None,
                 image_size: int | tuple[int, int] = 128, seed: int = 0,
                 transform: Transform | None = None, cache_dir: str | Path | None = None) -> None:
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
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._cached: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.num_images

    def __getstate__(self) -> dict:
        # DataLoader workers read the cache file themselves rather than receive 65 MB of pickled pixels
        return {**self.__dict__, "_cached": None}

    @property
    def cache_file(self) -> Path | None:
        """Where the drawn split is kept (``None`` without ``cache_dir``)."""
        if self.cache_dir is None:
            return None
        h, w = self.image_size
        key = f"v{self.version}-{self.split}-seed{self.seed}-n{self.num_images}-{h}x{w}"
        return self.cache_dir / f"procedural-{key}.npz"

    def _scenes(self) -> tuple[np.ndarray, np.ndarray]:
        """Every image and label map of the split, ``uint8 [N, H, W, 3]`` and ``uint8 [N, H, W]``, drawn once."""
        if self._cached is None:
            path = self.cache_file
            assert path is not None
            try:
                with np.load(path) as f:
                    self._cached = (f["images"], f["masks"])
            except (OSError, KeyError, ValueError):  # absent, or damaged: draw it (again)
                self._cached = self._draw_all()
                _write_npz(path, images=self._cached[0], masks=self._cached[1])
        return self._cached

    def _draw_all(self) -> tuple[np.ndarray, np.ndarray]:
        from tqdm import tqdm

        h, w = self.image_size
        images = np.empty((self.num_images, h, w, 3), np.uint8)
        masks = np.empty((self.num_images, h, w), np.uint8)  # 8 classes: no id reaches 256
        processes = min(usable_cpus(), self.num_images // PARALLEL_DRAW_MIN)
        with tqdm(total=self.num_images, desc=f"drawing {self.split} scenes", unit="scene", leave=False,
                  disable=self.num_images < PARALLEL_DRAW_MIN) as bar:
            if processes < 2:
                for i in range(self.num_images):
                    images[i], masks[i] = self._draw(i)
                    bar.update()
                return images, masks
            # each scene is a pure function of its index: drawn in parallel, the same pixels as one by one. A
            # fork (the scenes need numpy only, no torch thread pool) copies no pixels: only chunks come back
            chunks = [range(a, min(a + DRAW_CHUNK, self.num_images)) for a in range(0, self.num_images, DRAW_CHUNK)]
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(processes, mp_context=context) as pool:
                for chunk, (imgs, msks) in zip(chunks, pool.map(self._draw_chunk, chunks), strict=True):
                    images[chunk.start:chunk.stop], masks[chunk.start:chunk.stop] = imgs, msks
                    bar.update(len(chunk))
        return images, masks

    def _draw_chunk(self, indices: range) -> tuple[np.ndarray, np.ndarray]:
        drawn = [self._draw(i) for i in indices]
        return np.stack([d[0] for d in drawn]), np.stack([d[1] for d in drawn]).astype(np.uint8)

    def _draw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng((self.seed, SPLIT_CODES[self.split], index))
        return render_scene(rng, *self.image_size)

    def generate(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Scene ``index`` as numpy arrays ``(uint8 [H, W, 3], int64 [H, W])``."""
        if self.cache_dir is None:
            return self._draw(index)
        images, masks = self._scenes()
        return images[index], masks[index].astype(np.int64)

    def load(self, index: int) -> tuple[Tensor, Tensor]:
        image, mask = self.generate(index)
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(mask)


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    from ..utils.io import atomic_write

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def validation_scenes(count: int, size: int, seed: int = 0, split: str = "val") -> torch.Tensor:
    """The first ``count`` scenes of the procedural validation set (or of ``split``) at ``size`` x ``size``,
    normalised with MEAN/STD: a float tensor ``[count, 3, size, size]``, the same on every machine (for
    comparing the labels of two ways of running one model; ``split="train"``: int8 calibration)."""
    from .transforms import normalize

    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"the label comparison needs at least one image, got images={count!r}")
    scenes = ProceduralScenes(split, num_images=count, image_size=size, seed=seed)
    rgb = np.stack([scenes.generate(i)[0] for i in range(count)])
    return normalize(torch.from_numpy(rgb).permute(0, 3, 1, 2))
