"""Joint image/mask transforms: the paper's training augmentation, the evaluation transform, and their inverse.

Both transforms take ``(uint8 image [3, H, W], int64 mask [H, W])`` as the datasets return them and give
``(float image [3, H', W'] normalised with ImageNet MEAN/STD, int64 mask [H', W'])``. Randomness comes from
torch's global generator (or the one passed in), so ``torch.manual_seed`` makes them reproducible; each
``DataLoader`` worker gets its own torch seed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..models import MEAN, STD
from .base import IGNORE_INDEX

__all__ = ["TrainTransform", "EvalTransform", "normalize", "denormalize", "MEAN_UINT8"]

# the ImageNet mean colour in 0..255: padding the image with it gives zeros after normalisation
MEAN_UINT8 = [round(255 * m) for m in MEAN]


def _as_uint8(image: Tensor) -> Tensor:
    if image.dtype == torch.uint8:
        return image
    if image.is_floating_point():  # assume [0, 1]
        return (image.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    raise TypeError(f"expected a uint8 or float image, got {image.dtype}")


def normalize(image: Tensor) -> Tensor:
    """``uint8 [..., 3, H, W]`` (or float in [0, 1]) -> float32 normalised with ImageNet MEAN/STD."""
    x = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
    mean = torch.tensor(MEAN, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(STD, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return ((x - mean) / std).as_subclass(Tensor)


def denormalize(image: Tensor) -> Tensor:
    """Inverse of :func:`normalize` for pictures: float ``[..., 3, H, W]`` -> ``uint8 [..., 3, H, W]``."""
    mean = torch.tensor(MEAN, dtype=torch.float32, device=image.device).view(3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32, device=image.device).view(3, 1, 1)
    x = image.detach().float() * std + mean
    return (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8)


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _randint(high: int, generator: torch.Generator | None) -> int:
    """A uniform integer in ``[0, high]`` (inclusive)."""
    return int(torch.randint(high + 1, (), generator=generator))


class TrainTransform:
    """The paper's augmentation: random scale, horizontal flip, pad, random crop; then normalise.

    * scale: a factor ``s`` uniform in ``scale_range`` (0.5-2.0 in the paper). With ``base_size`` the long side
      becomes ``s * base_size``; without, both sides are multiplied by ``s``. Image bilinear (antialiased),
      mask nearest (centre-aligned, so the two stay registered);
    * flip left-right with probability 0.5 when ``flip``;
    * pad right/bottom up to ``crop_size``: the image with the ImageNet mean colour (0 after normalisation), the
      mask with ``IGNORE_INDEX``;
    * random crop of ``crop_size`` (an int for a square, or ``(height, width)``).
    """

    def __init__(self, crop_size: int | tuple[int, int], scale_range: tuple[float, float] = (0.5, 2.0),
                 base_size: int | None = None, flip: bool = True, generator: torch.Generator | None = None) -> None:
        self.crop_size = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)
        if min(self.crop_size) < 1:
            raise ValueError(f"crop_size must be positive, got {crop_size}")
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range}")
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.base_size = base_size
        self.flip = flip
        self.generator = generator

    def __repr__(self) -> str:
        return (f"TrainTransform(crop_size={self.crop_size}, scale_range={self.scale_range}, "
                f"base_size={self.base_size}, flip={self.flip})")

    def __call__(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        # torchvision's transforms take a second to import: only what augments pays for it
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as F

        img = tv_tensors.Image(_as_uint8(image))
        msk = tv_tensors.Mask(mask.long())
        if img.shape[-2:] != msk.shape[-2:]:
            raise ValueError(f"image {tuple(img.shape)} and mask {tuple(msk.shape)} sizes differ")
        h, w = img.shape[-2:]
        gen = self.generator

        s = _uniform(*self.scale_range, gen)
        factor = s * self.base_size / max(h, w) if self.base_size else s
        size = [max(1, round(h * factor)), max(1, round(w * factor))]
        if size != [h, w]:
            img = F.resize(img, size, interpolation=InterpolationMode.BILINEAR, antialias=True)
            msk = F.resize(msk, size, interpolation=InterpolationMode.NEAREST_EXACT)

        if self.flip and float(torch.rand((), generator=gen)) < 0.5:
            img, msk = F.horizontal_flip(img), F.horizontal_flip(msk)

        ch, cw = self.crop_size
        pad_h, pad_w = max(ch - size[0], 0), max(cw - size[1], 0)
        if pad_h or pad_w:
            img = F.pad(img, [0, 0, pad_w, pad_h], fill=MEAN_UINT8)
            msk = F.pad(msk, [0, 0, pad_w, pad_h], fill=IGNORE_INDEX)

        top = _randint(img.shape[-2] - ch, gen)
        left = _randint(img.shape[-1] - cw, gen)
        img, msk = F.crop(img, top, left, ch, cw), F.crop(msk, top, left, ch, cw)
        return normalize(img), msk.as_subclass(Tensor)


class EvalTransform:
    """No geometric change: normalise the image, make the mask int64 (evaluate at full resolution)."""

    def __repr__(self) -> str:
        return "EvalTransform()"

    def __call__(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        return normalize(_as_uint8(image)), mask.long().as_subclass(Tensor)
