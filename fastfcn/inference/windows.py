"""How one resized image becomes class scores: the official sliding window, or one forward.

The score of a class is the exponential of its logit, as the official FastFCN/EncNet evaluator computes it
(``module_inference`` in its ``encoding/models/base.py``: ``output.exp()``): with ``flip`` the logits of the
image and of its mirror image are *added* before the exponential, windows average their scores where they
overlap, and :mod:`fastfcn.inference.evaluate` resizes each scale's scores back to the image and sums them.
Per pixel this ranks the classes as the softmax does; it differs where scores are averaged or interpolated
between pixels, at class boundaries: against averaging softmax probabilities, 0.36 % of the labels changed at
one scale and 1.5 % with six scales and flip (chapter 7's trained EncNet+JPU, six 200 px procedural scenes at
long side 160 in crops of 128, 2026-12-05).

``slide`` (the official FastFCN/EncNet test protocol, the default of ``fastfcn eval``): the image is
padded to at least one ``crop_size`` crop per side and covered by ``crop_size`` windows placed every
``2/3 * crop_size`` pixels; the windows' scores are averaged where they overlap. At the
paper's sizes (long side 520, crops of 480) a 512x512 photo takes four forwards.

``whole`` (mmsegmentation's ``whole`` test mode, the default of ``fastfcn predict``): the resized
image goes through the network once, at its own size. The network is fully convolutional and its
output is resized to its input, so any size works (a side under ``MIN_SIDE`` pixels is padded); one
forward costs about a quarter of the four.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from ..models import MEAN, STD, FastFCN

__all__ = ["MODES", "Mode", "STRIDE_RATE", "MIN_SIDE", "segment_logits", "sliding_windows", "pad_to", "forward_scores",
           "image_scores", "scaled_size", "slide_forwards"]

Mode = Literal["slide", "whole"]
MODES: tuple[str, ...] = ("slide", "whole")
STRIDE_RATE = 2.0 / 3.0
# whole mode pads a thinner image (a strip) to this many pixels a side, as slide pads to a crop: C5, at
# 1/32 of the input, then has two rows and columns, the least an exported graph takes
MIN_SIDE = 33


def segment_logits(model: nn.Module, x: Tensor) -> Tensor:
    """The main logits at the input's size, without computing the auxiliary head (unused at test time)."""
    net = model.module if hasattr(model, "module") else model  # DistributedDataParallel
    if isinstance(net, FastFCN):
        return net(x, with_aux=False)["out"]
    return net(x)["out"]


def scaled_size(height: int, width: int, base_size: int, scale: float) -> tuple[int, int]:
    """The size an image is resized to at ``scale``: long side ``ceil(base_size * scale)``, aspect kept."""
    long_side = int(math.ceil(base_size * scale))
    if height > width:
        return long_side, max(1, int(width * long_side / height + 0.5))
    return max(1, int(height * long_side / width + 0.5)), long_side


def slide_forwards(height: int, width: int, scales: tuple[float, ...] | list[float], flip: bool, base_size: int,
                   crop_size: int) -> int:
    """How many ``crop_size`` crops the network runs for one ``height`` x ``width`` image in ``slide`` mode
    (one per window per scale, twice with ``flip``)."""
    per_scale = [len(sliding_windows(*scaled_size(height, width, base_size, s), crop_size)[0]) for s in scales]
    return sum(per_scale) * (2 if flip else 1)


def sliding_windows(height: int, width: int, crop_size: int,
                    stride_rate: float = STRIDE_RATE) -> tuple[list[tuple[int, int, int, int]], tuple[int, int]]:
    """Windows ``(top, bottom, left, right)`` over an image padded to ``(max(h, crop), max(w, crop))``.

    Returns the windows and that padded size. Windows start every ``int(crop * stride_rate)`` pixels;
    the last one of a row/column may end past the padded image (the caller pads it to a full crop).
    """
    if crop_size < 1 or height < 1 or width < 1:
        raise ValueError(f"bad sizes: image {height}x{width}, crop {crop_size}")
    stride = max(1, int(crop_size * stride_rate))
    ph, pw = max(height, crop_size), max(width, crop_size)
    rows = math.ceil((ph - crop_size) / stride) + 1
    cols = math.ceil((pw - crop_size) / stride) + 1
    windows = []
    for r in range(rows):
        for c in range(cols):
            top, left = r * stride, c * stride
            windows.append((top, min(top + crop_size, ph), left, min(left + crop_size, pw)))
    return windows, (ph, pw)


def pad_to(x: Tensor, height: int, width: int) -> Tensor:
    """Pad ``[B, 3, h, w]`` at the bottom/right to ``height x width`` with normalised black."""
    dh, dw = height - x.shape[-2], width - x.shape[-1]
    if dh <= 0 and dw <= 0:
        return x
    value = torch.tensor([-m / s for m, s in zip(MEAN, STD, strict=True)], dtype=x.dtype, device=x.device)
    out = value.view(1, 3, 1, 1).expand(x.shape[0], 3, x.shape[-2] + max(dh, 0), x.shape[-1] + max(dw, 0)).clone()
    out[..., : x.shape[-2], : x.shape[-1]] = x
    return out


def forward_scores(model: nn.Module, x: Tensor, flip: bool) -> Tensor:
    """Class scores ``[B, C, h, w]`` of one forward of ``x`` (``[B, 3, h, w]``): the exponential of the logits,
    with ``flip`` of the logits of ``x`` and of its mirror image added (the official evaluator's)."""
    n = x.shape[0]
    batch = torch.cat([x, x.flip(-1)]) if flip else x
    logits = segment_logits(model, batch).float()
    if flip:
        logits = logits[:n] + logits[n:].flip(-1)
    # into the logits' own memory (a fresh output of every forward): the same values to the bit, without a
    # second tensor of 59 classes at 520 x 520
    return logits.exp() if logits.requires_grad else torch.exp(logits, out=logits)


def _slide_scores(model: nn.Module, image: Tensor, crop_size: int, flip: bool) -> Tensor:
    h, w = image.shape[-2:]
    windows, (ph, pw) = sliding_windows(h, w, crop_size)
    padded = pad_to(image, ph, pw)
    total: Tensor | None = None
    counts = torch.zeros(1, 1, ph, pw, device=image.device)
    for top, bottom, left, right in windows:
        crop = pad_to(padded[..., top:bottom, left:right], crop_size, crop_size)
        scores = forward_scores(model, crop, flip)[..., : bottom - top, : right - left]
        if total is None:
            total = torch.zeros(image.shape[0], scores.shape[1], ph, pw, device=image.device)
        total[..., top:bottom, left:right] += scores
        counts[..., top:bottom, left:right] += 1
    assert total is not None
    return (total / counts)[..., :h, :w]


def image_scores(model: nn.Module, image: Tensor, crop_size: int, flip: bool, mode: str = "slide") -> Tensor:
    """Class scores ``[B, C, h, w]`` of (already resized and normalised) images of one size ``[B, 3, h, w]``
    (``B`` is 1 but where evaluation batches images, :func:`fastfcn.inference.evaluate.predict_probs_batch`)."""
    if mode == "whole":
        h, w = image.shape[-2:]
        if h >= MIN_SIDE and w >= MIN_SIDE:
            return forward_scores(model, image, flip)
        return forward_scores(model, pad_to(image, max(h, MIN_SIDE), max(w, MIN_SIDE)), flip)[..., :h, :w]
    if mode == "slide":
        return _slide_scores(model, image, crop_size, flip)
    raise ValueError(f"unknown inference mode {mode!r}; choose one of {', '.join(MODES)}")
