"""The FCN head: 3x3 conv-BN-ReLU to a quarter of the channels, dropout, 1x1 classifier.

Used as the auxiliary head on C4 by every model, and as a plain head (``head="fcn"``).
"""

from __future__ import annotations

from torch import nn

__all__ = ["FCNHead"]


class FCNHead(nn.Sequential):
    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.1) -> None:
        inter = in_channels // 4
        super().__init__(
            nn.Conv2d(in_channels, inter, 3, padding=1, bias=False),
            nn.BatchNorm2d(inter),
            nn.ReLU(inplace=True),
            nn.Dropout2d(dropout),
            nn.Conv2d(inter, num_classes, 1),
        )
