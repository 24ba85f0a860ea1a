"""The positions of Section 3.3's ``y_s = R(y_d)``: which 1 of every 16 stride-8 positions the stride-32 map keeps.

* :func:`kept_mask` -- the fine-grid positions the coarse grid samples;
* :func:`offset_errors` -- the check that it is that offset (and no other) where coarse equals fine;
* :func:`aligned_upsample` -- interpolation that puts each coarse sample back where it came from.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["RATE", "kept_mask", "offset_errors", "aligned_upsample"]

RATE = 4  # stride 32 / stride 8: the plain C5 samples every 4th row and column of the dilated C5


def kept_mask(height: int, width: int, rate: int = RATE, device: str | torch.device = "cpu") -> Tensor:
    """``[height, width]`` bool: the positions of the fine grid that the coarse grid samples.

    Stride-``rate`` subsampling (``R`` applied ``log2 rate`` times) keeps rows and columns that are
    multiples of ``rate``: position ``(rate i, rate j)`` of the fine map is position ``(i, j)`` of the
    coarse one. One position in ``rate**2``, more at odd sizes (the last row and column count). The
    reference of the mask chapter 9 writes in view.
    """
    rows = torch.arange(height, device=device) % rate == 0
    cols = torch.arange(width, device=device) % rate == 0
    return rows[:, None] & cols[None, :]


def offset_errors(coarse: Tensor, fine: Tensor, rate: int = RATE) -> dict[tuple[int, int], float]:
    """For each offset ``(a, b)``: ``max |coarse - fine[..., a::rate, b::rate]| / max |coarse|``.

    Only the offset that the coarse grid really samples gives float rounding (about 1e-6); the others
    are the difference between neighbouring positions. Where a shifted sub-grid is smaller (odd sizes),
    the positions it has are compared.
    """
    scale = coarse.abs().max().clamp_min(1e-12)
    out = {}
    for a in range(rate):
        for b in range(rate):
            sub = fine[..., a::rate, b::rate]
            h, w = min(sub.shape[-2], coarse.shape[-2]), min(sub.shape[-1], coarse.shape[-1])
            if h and w:  # at odd sizes a shifted sub-grid is a row or column short: compare what overlaps
                out[a, b] = float((coarse[..., :h, :w] - sub[..., :h, :w]).abs().max() / scale)
    return out


def aligned_upsample(c5: Tensor, size: Sequence[int], rate: int = RATE) -> Tensor:
    """No learning: put each coarse sample at the fine position it came from, interpolate linearly between.

    Bilinear with ``align_corners=True`` onto ``rate (n - 1) + 1`` positions lands sample ``i`` exactly on
    position ``rate i``; the few rows and columns past the last sample copy it (replicate padding).
    Where the coarse map is ``R(y_d)`` this is exact on the kept positions.
    """
    h, w = c5.shape[-2:]
    inner = (rate * (h - 1) + 1, rate * (w - 1) + 1)
    y = F.interpolate(c5, inner, mode="bilinear", align_corners=True) if (h > 1 and w > 1) else c5
    pad_h, pad_w = size[0] - y.shape[-2], size[1] - y.shape[-1]
    if pad_h < 0 or pad_w < 0:
        raise ValueError(f"a {h}x{w} map at rate {rate} covers {tuple(y.shape[-2:])}, more than {tuple(size)}")
    return F.pad(y, (0, pad_w, 0, pad_h), mode="replicate") if (pad_h or pad_w) else y
