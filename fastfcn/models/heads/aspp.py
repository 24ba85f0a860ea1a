"""DeepLabV3's head: Atrous Spatial Pyramid Pooling (rates 12, 24, 36) with image pooling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import conv_bn_relu

__all__ = ["ASPP", "ASPPHead"]


class ASPPPooling(nn.Module):
    """ASPP's image-level branch: global average pooling -> 1x1 conv-BN-ReLU -> broadcast back to the input size
    (bilinear resize of a 1x1 map), so that every position sees a summary of the whole image."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = conv_bn_relu(in_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(self.pool(x))
        return F.interpolate(y, x.shape[-2:], mode="bilinear", align_corners=True)


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling (DeepLabV3, Chen et al., 2017): five parallel branches on the same map --
    a 1x1 conv, three 3x3 convs dilated at ``rates`` and image pooling (:class:`ASPPPooling`) -- concatenated
    and projected by a 1x1 conv-BN-ReLU (with dropout) to ``out_channels`` (``in_channels // 8`` by default)."""

    def __init__(self, in_channels: int, rates: tuple[int, int, int] = (12, 24, 36),
                 out_channels: int | None = None) -> None:
        super().__init__()
        out_channels = out_channels or in_channels // 8
        self.branches = nn.ModuleList(
            [conv_bn_relu(in_channels, out_channels, kernel_size=1)]
            + [conv_bn_relu(in_channels, out_channels, 3, dilation=r) for r in rates]
            + [ASPPPooling(in_channels, out_channels)]
        )
        self.project = nn.Sequential(
            *conv_bn_relu(len(self.branches) * out_channels, out_channels, kernel_size=1),
            nn.Dropout2d(0.5),
        )
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([b(x) for b in self.branches], dim=1))


class ASPPHead(nn.Module):
    """DeepLabV3's head, one of the context modules FastFCN is combined with (Section 3.2, Table 1's "ASPP"
    rows): ASPP -> 3x3 conv-BN-ReLU -> dropout -> 1x1 classifier (inner width ``in_channels // 8``)."""

    def __init__(self, in_channels: int, num_classes: int, rates: tuple[int, int, int] = (12, 24, 36)) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, rates)
        inter = self.aspp.out_channels
        self.block = nn.Sequential(*conv_bn_relu(inter, inter), nn.Dropout2d(0.1), nn.Conv2d(inter, num_classes, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.block(self.aspp(x))
