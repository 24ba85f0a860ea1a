"""Segmentation heads: EncNet (Encoding), DeepLabV3 (ASPP), PSPNet (pyramid pooling), FCN."""

from .aspp import ASPPHead
from .encnet import EncHead, EncModule, Encoding
from .fcn import AuxHead, FCNHead
from .psp import PSPHead

__all__ = ["ASPPHead", "AuxHead", "EncHead", "EncModule", "Encoding", "FCNHead", "PSPHead"]
