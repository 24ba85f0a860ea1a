"""The class of every pixel: the index of the first maximum over the class axis, in half the time on the CPU.

``probs.max(0).indices`` over class probabilities ``[C, H, W]`` reduces across planes that lie ``H x W``
floats apart, and PyTorch's CPU kernel for a reduction with indices is slow at that: 36 ms for 59 classes at
512 x 512 on a 2-core AVX2 EPYC, a third of what ``fastfcn predict`` spends beyond the network on one image.
:func:`class_argmax` walks the planes instead, keeping the best value so far and its class (three
vectorised operations per class over contiguous memory): 17 ms there, and the same labels to the bit, ties and
NaN included (measured 2026-12-05).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["PLANE_LOOP_PIXELS", "class_argmax"]

# below this many pixels per plane the per-class loop's call overhead outweighs the slow kernel
PLANE_LOOP_PIXELS = 4096


def class_argmax(probs: Tensor, dtype: torch.dtype = torch.int64) -> Tensor:
    """``probs.max(0).indices`` as ``dtype``: for each position of ``[C, ...]`` the first class with the
    largest value, or the first NaN's class where there is one (as PyTorch's ``max``)."""
    if probs.dim() < 1 or probs.shape[0] < 1:
        raise ValueError(f"expected scores with a class axis first, [C, ...], got shape {tuple(probs.shape)}")
    if probs[0].numel() < PLANE_LOOP_PIXELS or probs.is_cuda or probs.dtype not in (torch.float32, torch.float64):
        return probs.max(0).indices.to(dtype)
    best = probs[0].clone()
    labels = torch.zeros(best.shape, dtype=dtype, device=probs.device)
    better = torch.empty(best.shape, dtype=torch.bool, device=probs.device)
    for c in range(1, probs.shape[0]):
        torch.gt(probs[c], best, out=better)  # strictly greater: the first of equal maxima keeps its class
        torch.maximum(best, probs[c], out=best)  # maximum propagates NaN, so a NaN anywhere shows in best
        labels.masked_fill_(better, c)
    if bool(torch.isnan(best).any()):  # NaN compares false: where one is, max's answer is its first NaN
        return probs.max(0).indices.to(dtype)
    return labels
