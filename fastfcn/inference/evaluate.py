"""Inference and evaluation as the official FastFCN/EncNet test code.

For every scale ``s`` the image is resized (bilinear, ``align_corners=True``) so that its long side is
``ceil(base_size * s)`` (520 in the paper), keeping the aspect ratio. If the resized image fits in one
``crop_size`` crop (480) it is padded to that crop and run once; otherwise it is padded to at least one
crop per side and covered by ``crop_size`` windows placed every ``2/3 * crop_size`` pixels (the last
window of a row or column is padded where it runs past the image), and the windows' class
probabilities are averaged where they overlap. Padding uses the value of a black pixel after
normalisation. With ``flip`` each window is also run mirrored left-right and the two averaged.

Single-scale evaluation (the paper's Table 1) uses ``scales=(1.0,)`` without flip; multi-scale (Table 3)
uses ``MS_SCALES`` with flip. The softmax probabilities of each scale are resized back to the original
image size and averaged, and the prediction is their argmax.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.base import IGNORE_INDEX
from ..data.transforms import normalize
from ..model import MEAN, STD, FastFCN
from .metrics import SegmentationMetric, background_index

__all__ = ["MS_SCALES", "evaluate", "predict_probs", "sliding_windows", "segment_logits"]

MS_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
STRIDE_RATE = 2.0 / 3.0


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def segment_logits(model: nn.Module, x: Tensor) -> Tensor:
    """The main logits at the input's size, without computing the auxiliary head (unused at test time)."""
    net = _unwrap(model)
    if isinstance(net, FastFCN):
        return net(x, with_aux=False)["out"]
    return net(x)["out"]


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


def _pad(x: Tensor, height: int, width: int) -> Tensor:
    """Pad ``[B, 3, h, w]`` at the bottom/right to ``height x width`` with normalised black."""
    dh, dw = height - x.shape[-2], width - x.shape[-1]
    if dh <= 0 and dw <= 0:
        return x
    value = torch.tensor([-m / s for m, s in zip(MEAN, STD, strict=True)], dtype=x.dtype, device=x.device)
    out = value.view(1, 3, 1, 1).expand(x.shape[0], 3, x.shape[-2] + max(dh, 0), x.shape[-1] + max(dw, 0)).clone()
    out[..., : x.shape[-2], : x.shape[-1]] = x
    return out


def _window_probs(model: nn.Module, crop: Tensor, flip: bool) -> Tensor:
    batch = torch.cat([crop, crop.flip(-1)]) if flip else crop
    probs = segment_logits(model, batch).float().softmax(1)
    if flip:
        probs = 0.5 * (probs[:1] + probs[1:].flip(-1))
    return probs


def _scale_probs(model: nn.Module, image: Tensor, crop_size: int, flip: bool) -> Tensor:
    """Probabilities ``[1, C, h, w]`` of one (already resized) image by sliding windows."""
    h, w = image.shape[-2:]
    windows, (ph, pw) = sliding_windows(h, w, crop_size)
    padded = _pad(image, ph, pw)
    total: Tensor | None = None
    counts = torch.zeros(1, 1, ph, pw, device=image.device)
    for top, bottom, left, right in windows:
        crop = _pad(padded[..., top:bottom, left:right], crop_size, crop_size)
        probs = _window_probs(model, crop, flip)[..., : bottom - top, : right - left]
        if total is None:
            total = torch.zeros(1, probs.shape[1], ph, pw, device=image.device)
        total[..., top:bottom, left:right] += probs
        counts[..., top:bottom, left:right] += 1
    assert total is not None
    return (total / counts)[..., :h, :w]


@torch.no_grad()
def predict_probs(model: nn.Module, image: Tensor, scales: Sequence[float] = (1.0,), flip: bool = False,
                  base_size: int = 520, crop_size: int = 480) -> Tensor:
    """Class probabilities ``[C, H, W]`` of one image (``[3, H, W]``, uint8 or normalised float).

    The model should be in eval mode and on the image's device.
    """
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"expected one RGB image [3, H, W], got {tuple(image.shape)}")
    # a float image has been normalised already (by the dataset's EvalTransform)
    x = (image if image.is_floating_point() else normalize(image))[None]
    height, width = x.shape[-2:]
    total: Tensor | None = None
    for scale in scales:
        long_side = int(math.ceil(base_size * scale))
        if height > width:
            size = (long_side, max(1, int(width * long_side / height + 0.5)))
        else:
            size = (max(1, int(height * long_side / width + 0.5)), long_side)
        resized = F.interpolate(x, size, mode="bilinear", align_corners=True)
        probs = _scale_probs(model, resized, crop_size, flip)
        probs = F.interpolate(probs, (height, width), mode="bilinear", align_corners=True)
        total = probs if total is None else total + probs
    assert total is not None
    return total[0] / len(scales)


def evaluate(model: nn.Module, dataset: Any, scales: Sequence[float] = (1.0,), flip: bool = False,
             base_size: int = 520, crop_size: int = 480, device: str | torch.device = "cpu",
             limit: int | None = None, progress: bool = True) -> dict[str, Any]:
    """pixAcc / mIoU / per-class IoU of ``model`` on ``dataset`` (items ``(image, mask)``, any sizes).

    Under ``torch.distributed`` each process takes every ``world_size``-th image and the confusion
    matrices are summed, so every process returns the same metrics. For Pascal Context 60 the result
    also holds the 59-class protocol under ``"without_background"`` (see :mod:`fastfcn.inference.metrics`).
    """
    import torch.distributed as dist

    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    classes = list(getattr(dataset, "classes", []) or []) or None
    num_classes = _unwrap(model).config["num_classes"] if hasattr(_unwrap(model), "config") else dataset.num_classes
    metric = SegmentationMetric(num_classes, classes, ignore_index=getattr(dataset, "ignore_index", IGNORE_INDEX),
                                background=background_index(getattr(dataset, "name", None), classes), device=device)
    was_training = model.training
    model.eval()
    indices = range(rank, n, world)
    if progress and rank == 0:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc="eval", unit="img", leave=False)
    start = time.perf_counter()
    try:
        for i in indices:
            image, mask = dataset[i]
            probs = predict_probs(model, image.to(device), scales, flip, base_size, crop_size)
            metric.update(probs, mask.to(device))
    finally:
        model.train(was_training)
    metric.all_reduce()
    out = metric.compute()
    out.update({"images": n, "scales": list(scales), "flip": bool(flip), "base_size": base_size,
                "crop_size": crop_size, "time_s": time.perf_counter() - start})
    return out
