"""Chapter 8's measurements: where the Table 1 networks differ, beyond one mIoU.

* :func:`val_predictions` -- a trained network's labels and per-image confusion matrices on the val
  images, computed once and kept beside the training (chapters 7 and 8 both read them);
* :func:`error_map` -- the pixels a network gets wrong (the idea of the paper's Fig. 6);
* :func:`boundary_band` and :func:`trimap_accuracy` -- accuracy within a few pixels of the label
  boundaries (the "trimap" of the DeepLab papers);
* :func:`connected_components`, :func:`object_size_bins` and :func:`size_bin_iou` -- IoU of objects
  by their size, where the paper says the resolution of the last feature map matters;
* :func:`size_gain_words`, :func:`zero_iou_words` and :func:`overlap_words` -- what those numbers say, as
  sentences of the chapter that stay true whatever the numbers are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..utils.text import in_words

__all__ = ["VAL_BATCH", "val_predictions", "error_map", "boundary_band", "trimap_accuracy", "connected_components",
           "object_size_bins", "size_bin_iou", "find_objects", "Object", "SIZE_BINS", "size_gain_words",
           "zero_iou_words", "overlap_words"]

# object area bins in pixels of a 128-px image; scaled with the image's area for other sizes
SIZE_BINS: dict[str, tuple[float, float]] = {"small": (0, 64), "medium": (64, 256), "large": (256, float("inf"))}
# val images run through the network together by val_predictions (and by chapter 7's evaluate() check)
VAL_BATCH = 10


@torch.no_grad()
def val_predictions(checkpoint: str | Path, val_set: Any, n: int, *, base_size: int, crop_size: int,
                    device: str = "cpu", cache: bool = True, batch_size: int = VAL_BATCH) -> dict[str, Tensor]:
    """Labels (uint8) and confusion matrices ``[n, C, C]`` (rows: truth) of one checkpoint on ``n`` val images.

    One scale, no flip (Table 1's protocol): the long side resized to ``base_size``, windows of
    ``crop_size``; on the procedural scenes both are the image side, one window per image. Up to
    ``batch_size`` consecutive images of one size go through the network together, as
    ``evaluate(..., batch_size=batch_size)`` runs them (the same labels). Labels are ``[n, H, W]`` where
    the images share a size, else a list. With ``cache`` the result is stored beside the checkpoint
    (``val-N-BASE-CROP.pt``) and read back by later calls.
    """
    from ..checkpoint import model_from_checkpoint
    from ..inference.batching import runs_of_one_size
    from ..inference.evaluate import predict_probs_batch
    from ..inference.metrics import confusion_matrix
    from ..utils.io import atomic_save

    path = Path(checkpoint).with_name(f"val-{n}-{base_size}-{crop_size}.pt")
    if cache and path.is_file() and path.stat().st_mtime >= Path(checkpoint).stat().st_mtime:
        return torch.load(path, weights_only=True)
    model, _ = model_from_checkpoint(checkpoint)
    model.to(device).eval()
    labels, cms = [], []
    for batch in runs_of_one_size((val_set[i] for i in range(n)), batch_size, lambda item: item[0].shape):
        probs = predict_probs_batch(model, [image.to(device) for image, _ in batch], scales=(1.0,), flip=False,
                                    base_size=base_size, crop_size=crop_size)
        for p, (_, mask) in zip(probs, batch, strict=True):
            pred = p.argmax(0).cpu()
            labels.append(pred.to(torch.uint8))
            cms.append(confusion_matrix(pred, mask, p.shape[0]))
    same = len({tuple(x.shape) for x in labels}) == 1
    out = {"labels": torch.stack(labels) if same else labels, "cms": torch.stack(cms)}
    if cache:
        atomic_save(out, path)
    return out


def error_map(pred: Tensor, mask: Tensor, ignore_index: int = 255) -> Tensor:
    """``[H, W]`` bool: the pixels whose prediction differs from the label (ignored pixels are never wrong)."""
    return (pred.long() != mask.long()) & (mask.long() != ignore_index)


def _boundary(mask: Tensor) -> Tensor:
    """Pixels with a 4-neighbour of another label: ``[..., H, W]`` bool."""
    m = mask.long()
    edge = torch.zeros_like(m, dtype=torch.bool)
    edge[..., 1:, :] |= m[..., 1:, :] != m[..., :-1, :]
    edge[..., :-1, :] |= m[..., 1:, :] != m[..., :-1, :]
    edge[..., :, 1:] |= m[..., :, 1:] != m[..., :, :-1]
    edge[..., :, :-1] |= m[..., :, 1:] != m[..., :, :-1]
    return edge


def boundary_band(masks: Tensor, width: int) -> Tensor:
    """``[N, H, W]`` bool: pixels within ``width`` pixels (chessboard distance) of a label boundary."""
    edge = _boundary(masks).float()[:, None]
    if width > 0:   # a square max filter is a max over rows of a max over columns: 2k instead of k*k per pixel
        k = 2 * width + 1
        edge = F.max_pool2d(edge, (k, 1), stride=1, padding=(width, 0))
        edge = F.max_pool2d(edge, (1, k), stride=1, padding=(0, width))
    return edge[:, 0].bool()


def trimap_accuracy(preds: Tensor, masks: Tensor, widths: Sequence[int]) -> dict[int, float]:
    """Pixel accuracy (0..1) inside the boundary band of each width: ``{width: accuracy}``."""
    correct = preds.long() == masks.long()
    out = {}
    for w in widths:
        band = boundary_band(masks, w)
        out[w] = float(correct[band].float().mean()) if band.any() else float("nan")
    return out


def connected_components(region: Tensor, max_iter: int = 100_000) -> Tensor:
    """4-connected components of bool maps ``[..., H, W]``: ids ``1..K`` per map (0 outside), by first pixel.

    Label propagation: every pixel of a region takes the largest index among itself and its four
    neighbours until nothing changes. After each step a pixel also takes the label of the pixel its
    label names (pointer jumping): labels only move within a component, so the fixed point is the same,
    reached in far fewer steps than the longest path inside a component.
    """
    shape = region.shape
    h, w = shape[-2:]
    maps = region.reshape(-1, 1, h, w)
    # float32 holds every index exactly up to 2**24 pixels (twice as fast as float64 in max_pool2d)
    dtype = torch.float32 if h * w <= 2**24 else torch.float64
    inside = maps.to(dtype)
    # indices from the top left get the largest values, so a component is named after its first pixel
    idx = torch.arange(h * w, 0, -1, dtype=dtype).view(1, 1, h, w)
    lab = idx * inside
    for _ in range(max_iter):
        rows = F.max_pool2d(lab, (1, 3), stride=1, padding=(0, 1))
        cols = F.max_pool2d(lab, (3, 1), stride=1, padding=(1, 0))
        new = torch.maximum(rows, cols) * inside
        flat = new.view(new.shape[0], -1)
        owner = (h * w - flat).clamp(max=h * w - 1).long()     # the pixel whose own index is the label
        new = torch.maximum(flat, torch.gather(flat, 1, owner) * (flat > 0)).view_as(new)
        if torch.equal(new, lab):
            break
        lab = new
    out = torch.zeros(maps.shape[0], h * w, dtype=torch.long)
    for m in range(maps.shape[0]):   # renumber 1..K in raster order of each component's first pixel
        flat = lab[m].view(-1)
        ids = torch.unique(flat[flat > 0], sorted=True).flip(0)
        out[m, flat > 0] = torch.searchsorted(-ids, -flat[flat > 0]) + 1
    return out.view(shape)


def object_size_bins(area: float, image_pixels: int) -> str:
    """The size bin (:data:`SIZE_BINS`) of an object of ``area`` pixels in an image of ``image_pixels``."""
    scaled = area * (128 * 128) / image_pixels
    for name, (lo, hi) in SIZE_BINS.items():
        if lo <= scaled < hi:
            return name
    raise ValueError(f"no size bin for area {area}")


class Object(NamedTuple):
    """One object of a label map: image index, class, bounding box (grown by a margin) and its pixels there."""

    image: int
    cls: int
    box: tuple[slice, slice]
    pixels: Tensor   # bool, the size of the box
    size_bin: str


def find_objects(masks: Tensor, classes: Sequence[int], margin: int = 3) -> list[Object]:
    """The 4-connected regions of each of ``classes`` in label maps ``[N, H, W]``, with their size bins."""
    n, h, w = masks.shape
    comps = connected_components(torch.stack([masks == c for c in classes], 1))   # [N, len(classes), H, W]
    found = []
    for i in range(n):
        for j, c in enumerate(classes):
            for k in range(1, int(comps[i, j].max()) + 1):
                obj = comps[i, j] == k
                ys, xs = torch.nonzero(obj, as_tuple=True)
                box = (slice(max(int(ys.min()) - margin, 0), min(int(ys.max()) + margin + 1, h)),
                       slice(max(int(xs.min()) - margin, 0), min(int(xs.max()) + margin + 1, w)))
                found.append(Object(i, c, box, obj[box], object_size_bins(float(obj.sum()), h * w)))
    return found


def size_bin_iou(preds: Tensor, objects: Sequence[Object]) -> dict[str, dict[str, float]]:
    """Mean IoU (0..1) of single objects per size bin: ``{bin: {"iou", "objects"}}``.

    ``objects`` come from :func:`find_objects` on the label maps ``preds`` are compared with. An
    object's IoU is taken inside its grown bounding box, so predictions of its class elsewhere in the
    image (other objects) do not count against it.
    """
    per_bin: dict[str, list[float]] = {name: [] for name in SIZE_BINS}
    for o in objects:
        p = preds[o.image][o.box].long() == o.cls
        per_bin[o.size_bin].append(float((o.pixels & p).sum() / (o.pixels | p).sum()))
    return {name: {"iou": sum(v) / len(v) if v else float("nan"), "objects": float(len(v))}
            for name, v in per_bin.items()}


# ------------------------------------------------------------------------------------------------ in words


def size_gain_words(small: float, large: float, best_small: float, *, few: float = 10.0) -> str:
    """How JPU's gain over bilinear upsampling on small objects (``small``, points of IoU) compares with its gain on
    large ones (``large``), as the end of a sentence; ``best_small``: the best small-object IoU % of any network,
    explained when it is below ``few``."""
    if small > large:
        return "so the gain is larger for small objects than for large ones, as a coarse last feature map predicts"
    words = ("so the gain is no larger for small objects than for large ones, although a coarse last feature map "
             "should hurt small objects most")
    if best_small < few:
        words += (f". At this training length no network finds small objects well (the best small-object IoU is "
                  f"{best_small:.1f}%), so there is little there for any upsampling to recover")
    return words


def zero_iou_words(ious: Mapping[str, Mapping[str, float]], classes: Sequence[str]) -> str:
    """Which networks (``ious``: name -> class -> IoU %) score 0.0 (at one decimal) on which of ``classes``."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, iou in ious.items():
        zeros = tuple(c for c in classes if round(iou[c], 1) == 0)
        if zeros:
            groups.setdefault(zeros, []).append(name)
    if not groups:
        return f"Every network labels some pixels of {in_words(classes)} correctly."
    parts = [f"{in_words(names)} {'scores' if len(names) == 1 else 'score'} 0.0 on "
             f"{in_words(zeros)}" for zeros, names in groups.items()]
    return "; ".join(parts) + " (at one decimal: (almost) no pixel of the class labelled correctly)."


def overlap_words(curves: Mapping[str, Sequence[float]], tolerance: float = 0.5) -> str:
    """A sentence naming the pairs of ``curves`` (name -> values, in points) that lie within ``tolerance`` of each
    other at every point, so that one may hide the other on a plot."""
    names = list(curves)
    close = [f"{a} and {b}" for i, a in enumerate(names) for b in names[i + 1:]
             if all(abs(x - y) <= tolerance for x, y in zip(curves[a], curves[b], strict=True))]
    if not close:
        return f"No two curves lie within {tolerance:g} points of each other at every width."
    return (f"The curves of {'; of '.join(close)} lie within {tolerance:g} points of each other at every width, "
            f"so their lines nearly coincide on the plot.")
