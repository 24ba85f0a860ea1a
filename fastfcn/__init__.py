"""FastFCN in PyTorch: dilated vs. plain ResNet backbones, JPU, EncNet/ASPP/PSP heads."""

from . import ops
from .complexity import complexity
from .jpu import JPU
from .model import HEADS, MEAN, STD, UPSAMPLINGS, FastFCN, build_model
from .official import convert_official_state_dict, load_official
from .resnet import BACKBONES, build_resnet

__version__ = "0.1.0"
__all__ = ["BACKBONES", "HEADS", "JPU", "MEAN", "STD", "UPSAMPLINGS", "FastFCN", "build_model", "build_resnet",
           "complexity", "convert_official_state_dict", "load_official", "ops"]
