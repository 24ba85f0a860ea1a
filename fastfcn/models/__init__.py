"""The network, one file per part of the paper's Fig. 2: backbone -> upsampling -> head.

Where each concept of the paper lives:

* :mod:`.resnet` -- the backbone: ResNet at output stride 32 (the plain FCN trunk FastFCN keeps,
  Section 3.2) or 8 (DilatedFCN, Section 3.1: the last two stages dilated instead of strided);
* :mod:`.jpu` -- Joint Pyramid Upsampling (Section 3.3.3, Fig. 4): C3, C4, C5 of the plain trunk to
  one output-stride-8 map that stands in for DilatedFCN's last feature map;
* :mod:`.fpn` -- the alternatives to JPU that Table 1 compares with: bilinear upsampling and FPN;
* :mod:`.heads` -- the context modules that follow (Section 3.2): Encoding (EncNet), ASPP (DeepLabV3),
  PSP (PSPNet), and the plain FCN head (also the auxiliary head on C4);
* :mod:`.blocks` -- the conv-BN-ReLU block the upsampling modules and heads share;
* :mod:`.fastfcn` -- :class:`FastFCN`, the three parts put together, and :func:`build_model`, the one
  entry point (``upsampling="none"`` builds the dilated baseline, the others the OS 32 trunk), with
  :func:`build_upsampler` and :func:`build_head`, the tables of upsampling modules and heads it reads;
* :mod:`.official` -- the checkpoints released with the paper, renamed into these modules.

Nothing here imports the rest of the package: the network can be used without data, training,
inference or book code.
"""

from .fastfcn import HEADS, MEAN, STD, UPSAMPLINGS, FastFCN, build_head, build_model, build_upsampler
from .jpu import JPU, JPU_DILATIONS
from .official import convert_official_state_dict, load_official
from .resnet import BACKBONES, ResNet, build_resnet

__all__ = ["BACKBONES", "HEADS", "JPU", "JPU_DILATIONS", "MEAN", "STD", "UPSAMPLINGS", "FastFCN", "ResNet",
           "build_head", "build_model", "build_resnet", "build_upsampler", "convert_official_state_dict", "load_official"]
