"""The two simple alternatives to JPU in Table 1: bilinear upsampling and an FPN top-down path.

Both take (C3, C4, C5) of a plain output-stride-32 backbone and return a map at C3's resolution
(output stride 8), like JPU, so that the same head can follow any of them.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import conv_bn_relu

__all__ = ["BilinearUpsample", "FPN"]


def _resize(x: Tensor, size) -> Tensor:
    return F.interpolate(x, size, mode="bilinear", align_corners=True)


class BilinearUpsample(nn.Module):
    """Table 1's "Encoding-32-Bilinear" upsampling: C5 resized bilinearly x4 to C3's size; C3 and C4 are not
    used, and there are no parameters (the baseline that shows what JPU's joint upsampling adds)."""

    def __init__(self, in_channels: tuple[int, int, int] | list[int]) -> None:
        super().__init__()
        self.out_channels = in_channels[-1]

    def forward(self, c3: Tensor, c4: Tensor, c5: Tensor) -> Tensor:
        return _resize(c5, c3.shape[-2:])


class FPN(nn.Module):
    """Feature Pyramid Network top-down path (Lin et al., 2017) down to output stride 8: Table 1's "FPN" rows,
    the other way, besides JPU, to reach output stride 8 from the plain backbone's C3, C4, C5.

    1x1 lateral conv-BN-ReLU on each input to ``width``; ``p5 = l5``, ``p4 = l4 + up(p5)``,
    ``p3 = l3 + up(p4)``; a 3x3 conv-BN-ReLU smooths ``p3``, which is the output.
    """

    def __init__(self, in_channels: tuple[int, int, int] | list[int], width: int = 512) -> None:
        super().__init__()
        c3, c4, c5 = in_channels
        self.lateral3 = conv_bn_relu(c3, width, kernel_size=1)
        self.lateral4 = conv_bn_relu(c4, width, kernel_size=1)
        self.lateral5 = conv_bn_relu(c5, width, kernel_size=1)
        self.smooth = conv_bn_relu(width, width)
        self.out_channels = width

    def forward(self, c3: Tensor, c4: Tensor, c5: Tensor) -> Tensor:
        p5 = self.lateral5(c5)
        p4 = self.lateral4(c4) + _resize(p5, c4.shape[-2:])
        p3 = self.lateral3(c3) + _resize(p4, c3.shape[-2:])
        return self.smooth(p3)
