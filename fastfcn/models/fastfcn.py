"""The segmentation network: backbone -> upsampling (none/bilinear/FPN/JPU) -> head, plus aux head.

``build_model`` is the one entry point; ``FastFCN.forward`` returns a dict with ``"out"`` (logits at
the input's resolution), ``"aux"`` (auxiliary FCN head on C4, when built with ``aux_loss=True``; skipped
with ``forward(x, with_aux=False)``) and ``"se"`` (per-image class-presence logits, EncNet with SE-loss).
Every head returns a tensor of logits; the model gathers them into that dict.

The upsampling modules and the heads are two tables, name -> constructor, that :func:`build_upsampler`,
:func:`build_head` and :func:`build_model` read: a new module is one more entry.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .fpn import FPN, BilinearUpsample
from .heads import ASPPHead, AuxHead, EncHead, FCNHead, PSPHead
from .jpu import JPU
from .resnet import BACKBONES, ResNet, build_resnet

__all__ = ["FastFCN", "build_model", "build_upsampler", "build_head", "HEADS", "UPSAMPLINGS", "MEAN", "STD"]

# name -> constructor(in_channels of (C3, C4, C5), width): a module from C3, C4, C5 of the plain (output
# stride 32) trunk to one output-stride-8 map, with an ``out_channels`` attribute; "none" (the dilated
# trunk, no module) is the fourth choice
_UPSAMPLERS: dict[str, Callable[[tuple[int, int, int], int], nn.Module]] = {
    "bilinear": lambda in_channels, width: BilinearUpsample(in_channels),  # no parameters: width is unused
    "fpn": lambda in_channels, width: FPN(in_channels, width=width),
    "jpu": lambda in_channels, width: JPU(in_channels, width=width),
}
# name -> head class, each called as ``cls(in_channels, num_classes, **options)``; only EncNet takes options
_HEADS: dict[str, Callable[..., nn.Module]] = {"encnet": EncHead, "aspp": ASPPHead, "psp": PSPHead, "fcn": FCNHead}
HEADS = tuple(_HEADS)
UPSAMPLINGS = ("none", *_UPSAMPLERS)
# ImageNet statistics: the models expect inputs normalised with these (as torchvision and FastFCN)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class FastFCN(nn.Module):
    """The network of the paper's Fig. 2: a ResNet backbone, an upsampling module that brings C3, C4, C5 to
    output stride 8 (JPU in FastFCN, Section 3.3; ``None`` for the dilated DilatedFCN baseline, Fig. 1), and a
    segmentation head on that map, plus the auxiliary FCN head on C4 that only the training loss reads.

    ``forward`` returns ``{"out", "se", "aux"}`` (the last two when built and asked for): the head's logits
    resized to the input, EncNet's class-presence logits and the auxiliary head's logits.
    """

    def __init__(self, backbone: ResNet, upsample: nn.Module | None, head: nn.Module,
                 aux_head: nn.Module | None, config: dict[str, Any]) -> None:
        super().__init__()
        self.backbone = backbone
        self.upsample = upsample
        self.head = head
        self.aux_head = aux_head
        self.config = dict(config)

    def features(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """Backbone features ``[c2, c3, c4, c5]`` and the output-stride-8 map the head receives."""
        feats = self.backbone(x)
        c2, c3, c4, c5 = feats
        high_res = c5 if self.upsample is None else self.upsample(c3, c4, c5)
        return feats, high_res

    def forward(self, x: Tensor, with_aux: bool = True) -> dict[str, Tensor]:
        """Logits for a normalised batch ``(N, 3, H, W)``. ``with_aux=False`` returns the main output alone,
        without the auxiliary head and EncNet's SE output, which only the training loss reads (the official
        models compute them at test time too)."""
        self._check_input(x)
        size = x.shape[-2:]
        feats, high_res = self.features(x)
        # inference: the main output only (EncNet's SE output, one small linear layer, is dropped too, so an
        # exported or compiled graph leaves it out)
        logits, se = self._head(high_res, with_se=with_aux)
        out = {"out": F.interpolate(logits, size, mode="bilinear", align_corners=True)}
        if se is not None:
            out["se"] = se
        if with_aux and self.aux_head is not None:
            out["aux"] = F.interpolate(self.aux_head(feats[2]), size, mode="bilinear", align_corners=True)
        return out

    def _head(self, high_res: Tensor, with_se: bool) -> tuple[Tensor, Tensor | None]:
        """The head's logits and, when asked for and the head has the branch, EncNet's SE logits (one pass)."""
        if with_se and isinstance(self.head, EncHead) and self.head.has_se:
            return self.head(high_res, with_se=True)
        return self.head(high_res), None

    def _check_input(self, x: Tensor) -> None:
        """A clear error for the inputs a segmentation model cannot take (wrong shape, integers, wrong dtype)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a batch of RGB images (N, 3, H, W), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"expected a float tensor normalised with MEAN/STD, got dtype {x.dtype}")
        weight = next(self.backbone.conv1.parameters(), None)
        if (weight is not None and x.dtype != weight.dtype and x.device.type == weight.device.type
                and not torch.is_autocast_enabled(x.device.type)):
            raise TypeError(f"the input is {x.dtype} but the model's weights are {weight.dtype}: pass "
                            f"x.to({weight.dtype}) (or convert the model with model.to({x.dtype}))")


def _choice(name: str, value: str, options) -> str:
    if not isinstance(value, str) or value.lower() not in options:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(sorted(options))}")
    return value.lower()


def build_upsampler(kind: str, in_channels: tuple[int, int, int], width: int) -> nn.Module | None:
    """The upsampling module ``kind`` for a trunk whose C3, C4, C5 have ``in_channels`` channels.

    ``"none"`` -> ``None`` (the dilated trunk needs none); ``"bilinear"``, ``"fpn"``, ``"jpu"`` -> a module
    called as ``module(c3, c4, c5)`` that returns one map at C3's resolution, with ``out_channels`` channels.
    ``width`` is the FPN/JPU embedding width (512 in the paper); bilinear upsampling has no parameters.
    """
    kind = _choice("upsampling", kind, UPSAMPLINGS)
    if kind == "none":
        return None
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"the upsampling width must be a positive integer, got {width!r}")
    return _UPSAMPLERS[kind](tuple(in_channels), width)


def build_head(kind: str, in_channels: int, num_classes: int, *, se_loss: bool = False, after_jpu: bool = False,
               width: int = 512) -> nn.Module:
    """The segmentation head ``kind`` (``"encnet"``, ``"aspp"``, ``"psp"`` or ``"fcn"``): ``in_channels`` ->
    ``num_classes`` logits at the same resolution. ``se_loss``, ``after_jpu`` and ``width`` are EncNet's options
    (its SE branch, its 1x1 first convolution after JPU, its inner width); the other heads take none."""
    kind = _choice("head", kind, HEADS)
    if se_loss and kind != "encnet":
        raise ValueError(f"se_loss is EncNet's branch; head {kind!r} has none (pass se_loss=False)")
    options = {"se_loss": se_loss, "after_jpu": after_jpu, "width": width} if kind == "encnet" else {}
    return _HEADS[kind](in_channels, num_classes, **options)


def _check_options(head: str, num_classes: int, se_loss: bool, jpu_width: int) -> None:
    """``build_model``'s arguments checked before anything is built (the backbone may download weights)."""
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if se_loss and head != "encnet":
        raise ValueError(f"se_loss is EncNet's branch; head {head!r} has none (pass se_loss=False)")
    if not isinstance(jpu_width, int) or jpu_width < 1:
        raise ValueError(f"jpu_width must be a positive integer, got {jpu_width!r}")


def build_model(head: str, *, backbone: str = "resnet50", upsampling: str = "jpu", num_classes: int = 59,
                aux_loss: bool = True, se_loss: bool | None = None, weights_backbone: str | None = None,
                jpu_width: int = 512, aux: bool | None = None) -> FastFCN:
    """Build one network of the paper.

    Args:
        head: ``"encnet"``, ``"aspp"`` (DeepLabV3), ``"psp"`` or ``"fcn"``.
        backbone: ``resnet50``/``resnet101`` (torchvision layout), ``resnet50s``/``resnet101s``
            (deep stem, as the official checkpoints), or the light ``resnet18``/``resnet34``.
        upsampling: ``"none"`` (dilated backbone, output stride 8: the DilatedFCN baseline),
            ``"bilinear"``, ``"fpn"`` or ``"jpu"`` (plain backbone, output stride 32, then upsampling).
        num_classes: number of output classes (59 for Pascal Context, 150 for ADE20K).
        aux_loss: add the auxiliary FCN head on C4 (its output feeds the training loss only), as
            torchvision's ``aux_loss``.
        se_loss: EncNet's SE-loss branch; defaults to True for ``encnet`` and must be False otherwise.
        weights_backbone: ``None``, ``"imagenet"`` (torchvision weights API) or a local file path.
        jpu_width: the JPU (and FPN) embedding width, 512 in the paper.
        aux: the former name of ``aux_loss`` (deprecated).
    """
    if aux is not None:
        warnings.warn("build_model(aux=...) is deprecated; use aux_loss=...", DeprecationWarning, stacklevel=2)
        aux_loss = aux
    head = _choice("head", head, HEADS)
    backbone = _choice("backbone", backbone, BACKBONES)
    upsampling = _choice("upsampling", upsampling, UPSAMPLINGS)
    se_loss = head == "encnet" if se_loss is None else se_loss
    _check_options(head, num_classes, se_loss, jpu_width)

    trunk = build_resnet(backbone, output_stride=8 if upsampling == "none" else 32, weights=weights_backbone)
    c2, c3, c4, c5 = trunk.channels
    upsample = build_upsampler(upsampling, (c3, c4, c5), jpu_width)
    # EncNet's 512 is the official head's on the standard ResNets; a narrower trunk gets a proportionally
    # narrower head (ASPP, PSP and FCN scale with their input already)
    seg_head = build_head(head, c5 if upsample is None else upsample.out_channels, num_classes, se_loss=se_loss,
                          after_jpu=upsampling == "jpu", width=512 * trunk.width // 64)
    aux_head = AuxHead(c4, num_classes) if aux_loss else None
    config = {"head": head, "backbone": backbone, "upsampling": upsampling, "num_classes": num_classes,
              "aux_loss": bool(aux_loss), "se_loss": bool(se_loss), "jpu_width": jpu_width}
    return FastFCN(trunk, upsample, seg_head, aux_head, config)
