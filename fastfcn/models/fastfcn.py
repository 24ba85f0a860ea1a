"""The segmentation network: backbone -> upsampling (none/bilinear/FPN/JPU) -> head, plus aux head.

``build_model`` is the one entry point; ``FastFCN.forward`` returns a dict with ``"out"`` (logits at
the input's resolution), ``"aux"`` (auxiliary FCN head on C4, when built with ``aux_loss=True``; skipped
with ``forward(x, with_aux=False)``) and ``"se"`` (per-image class-presence logits, EncNet with SE-loss).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .fpn import FPN, BilinearUpsample
from .heads import ASPPHead, EncHead, FCNHead, PSPHead
from .jpu import JPU
from .resnet import BACKBONES, ResNet, build_resnet

__all__ = ["FastFCN", "build_model", "HEADS", "UPSAMPLINGS", "MEAN", "STD"]

HEADS = ("encnet", "aspp", "psp", "fcn")
UPSAMPLINGS = ("none", "bilinear", "fpn", "jpu")
# ImageNet statistics: the models expect inputs normalised with these (as torchvision and FastFCN)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class _PlainHead(nn.Module):
    """Wrap an ``nn.Sequential`` head (FCN) so that every head returns a dict."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"out": self.body(x)}


class FastFCN(nn.Module):
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
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a batch of RGB images (N, 3, H, W), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"expected a float tensor normalised with MEAN/STD, got dtype {x.dtype}")
        weight = next(self.backbone.conv1.parameters(), None)
        if (weight is not None and x.dtype != weight.dtype and x.device.type == weight.device.type
                and not torch.is_autocast_enabled(x.device.type)):
            raise TypeError(f"the input is {x.dtype} but the model's weights are {weight.dtype}: pass "
                            f"x.to({weight.dtype}) (or convert the model with model.to({x.dtype}))")
        size = x.shape[-2:]
        feats, high_res = self.features(x)
        out = self.head(high_res)
        out["out"] = F.interpolate(out["out"], size, mode="bilinear", align_corners=True)
        if not with_aux:  # inference: the main output only (EncNet's SE output, one small linear layer, is
            return {"out": out["out"]}  # dropped too, so an exported or compiled graph leaves it out)
        if self.aux_head is not None:
            out["aux"] = F.interpolate(self.aux_head(feats[2]), size, mode="bilinear", align_corners=True)
        return out


def _choice(name: str, value: str, options) -> str:
    if not isinstance(value, str) or value.lower() not in options:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(sorted(options))}")
    return value.lower()


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
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if se_loss is None:
        se_loss = head == "encnet"
    if se_loss and head != "encnet":
        raise ValueError(f"se_loss is EncNet's branch; head {head!r} has none (pass se_loss=False)")
    if not isinstance(jpu_width, int) or jpu_width < 1:
        raise ValueError(f"jpu_width must be a positive integer, got {jpu_width!r}")

    trunk = build_resnet(backbone, output_stride=8 if upsampling == "none" else 32, weights=weights_backbone)
    c2, c3, c4, c5 = trunk.channels
    upsample: nn.Module | None
    if upsampling == "none":
        upsample, head_in = None, c5
    elif upsampling == "bilinear":
        upsample = BilinearUpsample((c3, c4, c5))
        head_in = upsample.out_channels
    elif upsampling == "fpn":
        upsample = FPN((c3, c4, c5), width=jpu_width)
        head_in = upsample.out_channels
    else:
        upsample = JPU((c3, c4, c5), width=jpu_width)
        head_in = upsample.out_channels

    if head == "encnet":
        # 512 as the official head on the standard ResNets; a narrower trunk gets a proportionally narrower head
        # (ASPP, PSP and FCN scale with their input already)
        seg_head: nn.Module = EncHead(head_in, num_classes, se_loss=se_loss, after_jpu=upsampling == "jpu",
                                      width=512 * trunk.width // 64)
    elif head == "aspp":
        seg_head = ASPPHead(head_in, num_classes)
    elif head == "psp":
        seg_head = PSPHead(head_in, num_classes)
    else:
        seg_head = _PlainHead(FCNHead(head_in, num_classes))
    aux_head = FCNHead(c4, num_classes) if aux_loss else None
    config = {"head": head, "backbone": backbone, "upsampling": upsampling, "num_classes": num_classes,
              "aux_loss": bool(aux_loss), "se_loss": bool(se_loss), "jpu_width": jpu_width}
    return FastFCN(trunk, upsample, seg_head, aux_head, config)
