"""The FCN head: 3x3 conv-BN-ReLU to a quarter of the channels, dropout, 1x1 classifier.

Used as the auxiliary head on C4 by every model (:class:`AuxHead`), and as a plain segmentation head
(``head="fcn"``, :class:`FCNHead`). The two hold the same layers under different names, the names our
checkpoints (and the official ones, once renamed) have always had.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["FCNHead", "AuxHead", "fcn_layers"]


def fcn_layers(in_channels: int, num_classes: int, dropout: float = 0.1) -> nn.Sequential:
    """3x3 conv-BN-ReLU to ``in_channels // 4`` -> dropout -> 1x1 classifier to ``num_classes``."""
    inter = in_channels // 4
    return nn.Sequential(
        nn.Conv2d(in_channels, inter, 3, padding=1, bias=False),
        nn.BatchNorm2d(inter),
        nn.ReLU(inplace=True),
        nn.Dropout2d(dropout),
        nn.Conv2d(inter, num_classes, 1),
    )


class FCNHead(nn.Module):
    """FCN's head (Long et al., 2015) as the segmentation head on the output-stride-8 map (``head="fcn"``):
    the simplest head after the upsampling module, without a context module. The layers sit in ``body``
    (the official head's ``conv5``)."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.body = fcn_layers(in_channels, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class AuxHead(nn.Sequential):
    """The auxiliary head on C4 that the official training adds to every model (its loss, weighted, joins the
    main one; nothing reads it at test time): FCN's head, its layers stored directly (``aux_head.0`` ...)."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__(*fcn_layers(in_channels, num_classes, dropout))
