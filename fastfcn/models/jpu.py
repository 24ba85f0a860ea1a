"""Joint Pyramid Upsampling (Section 3.3.3, Fig. 4), with the official implementation's numerics.

JPU takes C3, C4, C5 of a plain (output stride 32) backbone and produces a feature map at C3's
resolution (output stride 8) that stands in for the last feature map of a dilated backbone:

1. (Fig. 4a) each input goes through a 3x3 conv-BN-ReLU to a common ``width``;
2. (Fig. 4b) the two deeper maps are resized bilinearly (``align_corners=True``) to C3's size and
   the three are concatenated deepest first, ``[C5, C4, C3]``, giving ``y_c``;
3. four separable convolutions with dilation 1, 2, 4, 8 read ``y_c`` in parallel; each is
   depthwise 3x3 (dilated) -> BN -> pointwise 1x1 -> BN -> ReLU;
4. (Fig. 4c) their concatenation (``4 * width`` channels) is what the segmentation head receives;
   the head's first convolution is the final "regular convolution block" of the figure.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import conv_bn_relu

__all__ = ["JPU", "JPU_DILATIONS", "SeparableConvBlock"]

JPU_DILATIONS = (1, 2, 4, 8)


class SeparableConvBlock(nn.Module):
    """One of JPU's four parallel branches (Fig. 4b, Section 3.3.3): a separable convolution at one dilation rate,
    depthwise 3x3 (dilated) -> BN -> pointwise 1x1 -> BN -> ReLU, from the ``3 * width`` channels of ``y_c`` to
    ``width``. Its dilation sets which positions of the stacked map it combines: the joint upsampling."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=dilation, dilation=dilation,
                                   groups=in_channels, bias=False)
        self.depthwise_bn = nn.BatchNorm2d(in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.pointwise(self.depthwise_bn(self.depthwise(x)))))


class JPU(nn.Module):
    """Joint Pyramid Upsampling (Section 3.3.3, Fig. 4), FastFCN's upsampling module: C3, C4, C5 of the plain
    output-stride-32 backbone to one map at C3's resolution (output stride 8), standing in for the last feature
    map of the dilated backbone (the steps are in the module's docstring).

    Args:
        in_channels: channels of (C3, C4, C5), e.g. ``(512, 1024, 2048)`` for ResNet-50.
        width: the common embedding width (512 in the paper); the output has ``4 * width`` channels.
        dilations: the rates of the parallel separable convolutions (1, 2, 4, 8 in the paper).
    """

    def __init__(self, in_channels: tuple[int, int, int] | list[int], width: int = 512,
                 dilations: tuple[int, ...] = JPU_DILATIONS) -> None:
        super().__init__()
        if len(in_channels) != 3:
            raise ValueError(f"JPU takes three inputs (C3, C4, C5), got in_channels={in_channels}")
        if width < 1:
            raise ValueError(f"JPU width must be positive, got {width}")
        c3, c4, c5 = in_channels
        self.width = width
        self.out_channels = width * len(dilations)
        self.conv5 = conv_bn_relu(c5, width)
        self.conv4 = conv_bn_relu(c4, width)
        self.conv3 = conv_bn_relu(c3, width)
        self.dilations = nn.ModuleList(SeparableConvBlock(3 * width, width, d) for d in dilations)

    def fuse(self, c3: Tensor, c4: Tensor, c5: Tensor) -> Tensor:
        """Steps 1-2: embed each input and stack them at C3's resolution -> ``y_c``."""
        y3 = self.conv3(c3)
        size = y3.shape[-2:]
        # always resized, as the official code does (an identity where the sizes already match, e.g. on a
        # dilated backbone): a branch on the shapes would stop an exported graph from taking any size
        y5, y4 = (F.interpolate(self.conv5(c5), size, mode="bilinear", align_corners=True),
                  F.interpolate(self.conv4(c4), size, mode="bilinear", align_corners=True))
        return torch.cat([y5, y4, y3], dim=1)

    def forward(self, c3: Tensor, c4: Tensor, c5: Tensor) -> Tensor:
        y_c = self.fuse(c3, c4, c5)
        return torch.cat([branch(y_c) for branch in self.dilations], dim=1)
