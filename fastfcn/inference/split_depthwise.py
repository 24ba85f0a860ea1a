"""A depthwise convolution with a large dilation, run as Section 3.3 runs a dilated one: split, convolve, merge.

A 3x3 convolution dilated by ``d`` reads, for each output pixel, inputs ``d`` apart, so the pixels of one
residue class (row and column mod ``d``) only ever meet each other: the input can be *split* into ``d x d``
sub-images, each convolved *without* dilation (padding 1), and the results *merged* back -- the same
multiply-adds on the same numbers (the paper's Eq. 3, :func:`fastfcn.ops.split`/:func:`fastfcn.ops.merge`).

Why it is here: JPU's separable convolutions are depthwise 3x3 convolutions dilated 1, 2, 4 and 8, and in
the channels-last layout oneDNN's depthwise kernel at dilation 8 is pathologically slow on some CPUs: on a
2-core AVX2 EPYC (Zen 1), 1536 channels at 64x64, 383 ms against 5-7 ms at dilations 1-4 (2026-12-03),
which alone made channels_last+fold_bn slower than fp32 eager there. Split into 64 sub-images of 8x8 it
takes 19 ms, with bit-identical outputs. The split and merge here move whole channel vectors (the
channels-last memory order), one copy each way; a side that ``d`` does not divide is padded with the zeros
the convolution's own padding would have read.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SPLIT_MIN_DILATION", "split_dilated_depthwise", "SplitDilatedDepthwise", "split_large_dilations",
           "to_channels_last"]

# dilations from which the split is used: at 2 and 4 the kernel is fast and the two copies would cost more
SPLIT_MIN_DILATION = 8


def split_dilated_depthwise(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """``conv(x)`` for a depthwise 3x3 ``conv`` with stride 1 and padding equal to its dilation, computed on the
    ``d x d`` sub-images of ``x`` without dilation. The result is in the channels-last memory order."""
    d = conv.dilation[0]
    n, c, h, w = x.shape
    hp, wp = -(-h // d) * d, -(-w // d) * d
    nhwc = x.permute(0, 2, 3, 1)
    if (hp, wp) != (h, w):  # zeros below and to the right: what the dilated convolution reads there anyway
        nhwc = F.pad(nhwc, (0, 0, 0, wp - w, 0, hp - h))
    parts = nhwc.reshape(n, hp // d, d, wp // d, d, c).permute(0, 2, 4, 1, 3, 5).contiguous()
    parts = parts.view(n * d * d, hp // d, wp // d, c).permute(0, 3, 1, 2)  # NCHW view of channels-last memory
    y = F.conv2d(parts, conv.weight, conv.bias, padding=1, groups=conv.groups)
    k = y.shape[1]
    merged = y.permute(0, 2, 3, 1).reshape(n, d, d, hp // d, wp // d, k).permute(0, 3, 1, 4, 2, 5).contiguous()
    merged = merged.view(n, hp, wp, k).permute(0, 3, 1, 2)
    if (hp, wp) != (h, w):
        merged = merged[:, :, :h, :w].contiguous(memory_format=torch.channels_last)
    return merged


def _splittable(conv: nn.Module, min_dilation: int) -> bool:
    return (type(conv) is nn.Conv2d and conv.groups == conv.in_channels and conv.kernel_size == (3, 3)
            and conv.stride == (1, 1) and conv.dilation[0] == conv.dilation[1] >= min_dilation
            and conv.padding == conv.dilation and conv.padding_mode == "zeros")


class SplitDilatedDepthwise(nn.Module):
    """A depthwise dilated ``Conv2d`` run by :func:`split_dilated_depthwise` (same parameters, same function)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not _splittable(conv, 2):
            raise ValueError(f"{conv} is not a depthwise 3x3 convolution with stride 1, dilation > 1 and "
                             "padding equal to the dilation")
        self.conv = conv

    def forward(self, x: Tensor) -> Tensor:
        return split_dilated_depthwise(x, self.conv)


def split_large_dilations(model: nn.Module, min_dilation: int = SPLIT_MIN_DILATION) -> int:
    """Replace, in place, every depthwise 3x3 convolution of ``model`` dilated by ``min_dilation`` or more with
    its :class:`SplitDilatedDepthwise`; returns how many were replaced."""
    count = 0
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if _splittable(child, min_dilation):
                setattr(parent, name, SplitDilatedDepthwise(child))
                count += 1
    return count


def to_channels_last(model: nn.Module, device: str) -> nn.Module:
    """``model`` in the channels-last memory layout (in place; returned), its depthwise convolutions dilated by
    :data:`SPLIT_MIN_DILATION` or more split first when ``device`` is a CPU (where oneDNN's channels-last kernel
    at that dilation can be many times slower than at the others)."""
    if str(device).startswith("cpu"):
        split_large_dilations(model)
    return model.to(memory_format=torch.channels_last)
