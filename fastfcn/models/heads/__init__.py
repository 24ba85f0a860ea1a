"""Segmentation heads: EncNet (Encoding), DeepLabV3 (ASPP), PSPNet (pyramid pooling), FCN."""

from .aspp import ASPPHead
from .encnet import EncHead, EncModule, Encoding
from .fcn import FCNHead
from .psp import PSPHead

__all__ = ["ASPPHead", "EncHead", "EncModule", "Encoding", "FCNHead", "PSPHead"]
