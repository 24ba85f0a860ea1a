"""PSPNet's head: pyramid pooling over 1x1, 2x2, 3x3 and 6x6 grids, then a 3x3 fusion conv."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import conv_bn_relu

__all__ = ["PyramidPooling", "PSPHead"]


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
        pooled = [F.interpolate(stage(F.adaptive_avg_pool2d(x, b)), size, mode="bilinear", align_corners=True)
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
