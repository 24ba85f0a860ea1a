"""PSPNet's head: pyramid pooling over 1x1, 2x2, 3x3 and 6x6 grids, then a 3x3 fusion conv."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import conv_bn_relu

__all__ = ["PyramidPooling", "PSPHead", "adaptive_avg_pool2d", "binned_average"]


def _bin_weights(size: int | Tensor, bins: int, like: Tensor) -> Tensor:
    """``[bins, size]``: row ``i`` averages positions ``floor(i * size / bins)`` to ``ceil((i + 1) * size / bins)
    - 1``, the bins of torch's adaptive pooling (neighbouring bins overlap when ``bins`` does not divide
    ``size``). ``size`` may be a traced 0-d tensor: the bounds are then computed by the exported graph."""
    index = torch.arange(bins, device=like.device)
    start = torch.div(index * size, bins, rounding_mode="floor")
    end = torch.div((index + 1) * size + bins - 1, bins, rounding_mode="floor")  # ceil, in integers
    positions = torch.arange(size, device=like.device)
    inside = (positions[None, :] >= start[:, None]) & (positions[None, :] < end[:, None])
    return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)


def adaptive_avg_pool2d(x: Tensor, bins: int) -> Tensor:
    """``F.adaptive_avg_pool2d(x, bins)`` as ONNX can export it for any input size.

    Eager code runs torch's own kernel (bit for bit what the checkpoints were trained and evaluated with).
    Under ``torch.onnx.export`` the bins' bounds are computed from the traced size and the average is two
    products with the bins' weights (:func:`_bin_weights`), the same function to float rounding: torch's
    exporter writes adaptive pooling as a fixed AveragePool, which is wrong, or fails, at any size whose
    side the bins do not divide.
    """
    if not torch.onnx.is_in_onnx_export():
        return F.adaptive_avg_pool2d(x, bins)
    return binned_average(x, bins)


def binned_average(x: Tensor, bins: int) -> Tensor:
    """``(B, C, H, W) -> (B, C, bins, bins)``: the average of every adaptive-pooling bin, as products with the
    bins' weights (rows, then columns); in a traced graph ``H`` and ``W`` stay free."""
    height, width = x.shape[-2:]  # traced as tensors under torch.onnx.export
    rows, cols = _bin_weights(height, bins, x), _bin_weights(width, bins, x)
    return rows @ x @ cols.transpose(0, 1)


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling module (Zhao et al., 2017): the map average-pooled to each of ``bins`` grids (1x1,
    2x2, 3x3, 6x6), each reduced by a 1x1 conv-BN-ReLU to a quarter of the channels, resized back and
    concatenated with the input (``out_channels = in_channels + len(bins) * in_channels // 4``)."""

    def __init__(self, in_channels: int, bins: tuple[int, ...] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.bins = bins
        self.stages = nn.ModuleList(conv_bn_relu(in_channels, in_channels // 4, kernel_size=1) for _ in bins)
        self.out_channels = in_channels + len(bins) * (in_channels // 4)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(stage(adaptive_avg_pool2d(x, b)), size, mode="bilinear", align_corners=True)
                  for b, stage in zip(self.bins, self.stages, strict=True)]
        return torch.cat([x, *pooled], dim=1)


class PSPHead(nn.Module):
    """PSPNet's head, one of the context modules FastFCN is combined with (Section 3.2, Table 1's "PSP" rows):
    pyramid pooling -> 3x3 conv-BN-ReLU to ``in_channels // 4`` -> dropout -> 1x1 classifier."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        inter = in_channels // 4
        self.ppm = PyramidPooling(in_channels)
        self.block = nn.Sequential(*conv_bn_relu(self.ppm.out_channels, inter), nn.Dropout2d(0.1),
                                   nn.Conv2d(inter, num_classes, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.block(self.ppm(x))
