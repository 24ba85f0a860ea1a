"""The benchmarked networks: built with random seeded weights, BatchNorm calibrated, and their complexity.

Inputs are synthetic images of flat coloured blocks (:func:`synthetic_images`). BatchNorm statistics are
first set by one training-mode forward on small such images (:func:`calibrate_bn`): an untrained network
in eval mode otherwise lets its activations grow by orders of magnitude through the residual blocks
(about 1e5 in ResNet-101's C4 and C5), which overflows fp16. Timing does not depend on the weights' values.
Parameters and GMACs (one multiply-add = one MAC, per image at batch 1) come from
:func:`fastfcn.complexity.complexity` on the meta device (no memory, no time).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..complexity import complexity
from ..data.transforms import normalize
from ..inference.split_depthwise import to_channels_last
from ..models import build_model
from ..models.resnet import build_resnet
from .options import BenchOptions
from .specs import ModelSpec

__all__ = ["CALIBRATION_SIZE", "build_spec_model", "synthetic_images", "calibrate_bn", "prepare_model",
           "model_complexity", "flops_by_part"]

CALIBRATION_SIZE = 128


def build_spec_model(spec: ModelSpec, opts: BenchOptions) -> nn.Module:
    """The network of ``spec`` with random weights (on the current default device)."""
    if spec.kind == "torchvision":
        import torchvision.models.segmentation as tvs

        return getattr(tvs, spec.name)(weights=None, weights_backbone=None, num_classes=opts.num_classes,
                                       aux_loss=opts.aux)
    if spec.kind != "fastfcn":
        raise ValueError(f"unknown model kind {spec.kind!r}")
    model = build_model(spec.head, backbone=spec.backbone, upsampling=spec.upsampling, num_classes=opts.num_classes,
                        aux_loss=opts.aux, jpu_width=opts.jpu_width)
    if spec.dilated_backbone:
        # same trunk, same channels, but dilated: C3, C4, C5 all come out at output stride 8
        model.backbone = build_resnet(spec.backbone, output_stride=8)
        model.config["backbone_output_stride"] = 8
    return model


def synthetic_images(batch: int, size: int, seed: int = 0, cells: int = 8) -> torch.Tensor:
    """Images of flat random-coloured blocks (``cells`` x ``cells``), normalised with MEAN/STD.

    Closer to a photograph's statistics (large uniform regions, sharp edges) than white noise; the
    networks see these for BatchNorm calibration, timing and the fast path's label comparison.
    """
    gen = torch.Generator().manual_seed(seed)
    rgb = F.interpolate(torch.rand(batch, 3, cells, cells, generator=gen), size=(size, size), mode="nearest")
    return normalize(rgb)


def calibrate_bn(model: nn.Module, size: int = CALIBRATION_SIZE, batch: int = 2, seed: int = 0) -> None:
    """Set every BatchNorm's running statistics from one training-mode forward on synthetic images.

    Keeps an untrained network's activations at a realistic scale in eval mode (see the module doc).
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    param = next(model.parameters())
    x = synthetic_images(batch, size, seed + 1).to(param.device, param.dtype)
    saved = [m.momentum for m in bns]
    was_training = model.training
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
        model.train()
        with torch.no_grad():
            model(x)
    finally:
        for m, mom in zip(bns, saved, strict=True):
            m.momentum = mom
        model.train(was_training)


def prepare_model(spec: ModelSpec, opts: BenchOptions, batch: int) -> tuple[nn.Module, torch.Tensor]:
    """The spec's model on ``opts.device``, BatchNorm calibrated, and a synthetic input batch (both in
    channels-last layout when ``opts.channels_last``)."""
    torch.manual_seed(opts.seed)
    model = build_spec_model(spec, opts).to(opts.device)
    calibrate_bn(model, min(opts.size, CALIBRATION_SIZE), seed=opts.seed)
    x = synthetic_images(batch, opts.size, opts.seed).to(opts.device)
    if opts.channels_last:
        model = to_channels_last(model, opts.device)
        x = x.contiguous(memory_format=torch.channels_last)
    return model, x


def model_complexity(spec: ModelSpec, opts: BenchOptions) -> dict[str, Any]:
    """Parameters, GMACs (per image) and activation bytes, counted on the meta device."""
    with torch.device("meta"):
        model = build_spec_model(spec, opts)
    c = complexity(model, opts.size)
    return {"params": c.params, "gmacs": c.gmacs, "activation_bytes": c.activation_bytes}


def flops_by_part(spec: ModelSpec, opts: BenchOptions) -> dict[str, float]:
    """GMACs of the backbone, the upsampling module, the head and the aux head (meta device)."""
    with torch.device("meta"):
        model = build_spec_model(spec, opts)
    c = complexity(model, opts.size, by_module_depth=2)
    parts = {k: v / 2e9 for k, v in c.flops_by_module.items() if k and "." not in k}
    parts["total"] = c.gmacs
    return parts
