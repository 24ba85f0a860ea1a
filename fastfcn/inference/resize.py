"""Bilinear resizing (``align_corners=True``, as ``F.interpolate``) one band of output rows at a time.

``F.interpolate`` materialises its whole output: for the class scores of a large photo that is
classes x pixels floats (15 GB for 150 classes at 5000 x 5000), and for the normalised input of a
10000 x 10000 image 1.2 GB before it is shrunk to 520 pixels. :class:`BilinearRows` computes any band of
output rows from the few source rows it needs, so the caller can reduce each band (to its argmax, or into
a small image) and memory stays bounded by the band.

The sampling positions and weights are those of ``F.interpolate`` (``scale = (in - 1) / (out - 1)`` in
float32, source index ``scale * i``, weights ``1 - frac`` and ``frac``); the sums are formed in the same
order, so the values agree with ``F.interpolate`` to float rounding (a few units in the last place: PyTorch's
own kernels differ that much between its CPU code paths, e.g. for 3 channels and for 4).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["axis_weights", "BilinearRows"]


def axis_weights(n_in: int, n_out: int, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(i0, i1, w0, w1)`` of one axis: output ``j`` is ``w0[j] * src[i0[j]] + w1[j] * src[i1[j]]``."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"bad sizes: {n_in} -> {n_out}")
    if n_out > 1:
        scale = torch.tensor(float(n_in - 1), dtype=torch.float32) / torch.tensor(float(n_out - 1),
                                                                                 dtype=torch.float32)
    else:
        scale = torch.tensor(0.0, dtype=torch.float32)
    real = torch.arange(n_out, dtype=torch.float32) * scale
    i0 = real.floor().long().clamp(0, n_in - 1)
    w1 = (real - i0.float()).clamp(0.0, 1.0)
    w0 = 1.0 - w1
    i1 = torch.where(i0 < n_in - 1, i0 + 1, i0)
    return i0.to(device), i1.to(device), w0.to(device), w1.to(device)


class BilinearRows:
    """Resize ``[..., h, w]`` to ``[..., H, W]`` by bands of output rows: ``resizer(src, start, stop)``."""

    def __init__(self, in_size: tuple[int, int], out_size: tuple[int, int],
                 device: torch.device | str = "cpu") -> None:
        self.in_size, self.out_size = tuple(in_size), tuple(out_size)
        self.rows = axis_weights(in_size[0], out_size[0], device)
        self.cols = axis_weights(in_size[1], out_size[1], device)

    def __call__(self, src: Tensor, start: int, stop: int,
                 transform: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """Output rows ``start:stop`` of resizing ``src`` (``[..., h, w]``), float.

        ``transform`` is applied to the gathered source rows first (e.g. normalising uint8 pixels), so
        only the rows the band needs are ever converted.
        """
        if tuple(src.shape[-2:]) != self.in_size:
            raise ValueError(f"expected a source of size {self.in_size}, got {tuple(src.shape[-2:])}")
        r0, r1, a0, a1 = (t[start:stop] for t in self.rows)
        c0, c1, b0, b1 = self.cols
        n = stop - start
        band = src.index_select(-2, torch.cat([r0, r1]))      # [..., 2n, w]
        band = transform(band) if transform is not None else band
        if not band.is_floating_point():
            band = band.float()
        across = band.index_select(-1, c0) * b0 + band.index_select(-1, c1) * b1   # [..., 2n, W]
        return across[..., :n, :] * a0[:, None] + across[..., n:, :] * a1[:, None]
