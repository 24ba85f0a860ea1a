"""Segmentation metrics from a confusion matrix: pixel accuracy, per-class IoU and mIoU.

The confusion matrix ``cm`` is ``C x C`` with rows = ground truth and columns = prediction, counted
with one ``torch.bincount`` over ``target * C + prediction``; pixels labelled ``ignore_index`` (255)
are left out. From it:

* ``pixAcc = trace(cm) / cm.sum()`` (correct labelled pixels over labelled pixels);
* ``IoU_c = cm[c, c] / (row_c + col_c - cm[c, c])``;
* ``mIoU`` = mean of ``IoU_c`` over the classes whose union is not empty. (The official code averages
  over all classes, giving absent ones an IoU of 0; the two agree whenever every class occurs in
  the ground truth or the predictions, as on the full Pascal Context and ADE20K val sets.)

Pascal Context, two protocols (paper, Tables 1 and 3). A model trained on ``pcontext60`` (background
is class 0, 60 outputs) is reported both ways:

* **60 classes with background**: the plain argmax over the 60 outputs and all labelled pixels.
* **59 classes without background** (as EncNet and the paper's Table 1): ground-truth background
  pixels are ignored, and the prediction is the argmax over the 59 object/stuff classes only (the
  background output is masked out, so a pixel is never "predicted background"). This cannot be read
  off the 60-class matrix (a pixel predicted as background there would have some other
  second-best class), so :class:`SegmentationMetric` accumulates a second matrix for it; its
  background row and column stay empty and the scores are taken over the other 59 classes.

A model trained on ``pcontext`` (59 outputs, background already ignored in the labels) is the
59-class protocol directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..data.base import IGNORE_INDEX

__all__ = ["confusion_matrix", "scores", "SegmentationMetric", "background_index",
           "format_metrics", "metric_for_dataset"]


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """``C x C`` int64 counts (rows: ground truth, columns: prediction) of one or more label maps."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    pred = pred.reshape(-1).long()
    target = target.reshape(-1).long().to(pred.device)
    valid = target != ignore_index
    pred, target = pred[valid], target[valid]
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ValueError(f"target labels must lie in [0, {num_classes}) or be {ignore_index}; "
                         f"found {int(target.min())}..{int(target.max())}")
    if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= num_classes):
        raise ValueError(f"predicted labels must lie in [0, {num_classes})")
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def scores(cm: Tensor, classes: Sequence[str] | None = None, exclude: Sequence[int] = ()) -> dict[str, Any]:
    """pixAcc, mIoU and per-class IoU of a confusion matrix; classes in ``exclude`` are dropped first.

    Returns ``{"pixAcc", "mIoU", "num_classes", "iou": {name: IoU or None}}`` (None: the class
    occurs neither in the ground truth nor in the predictions).
    """
    cm = cm.detach().to("cpu", torch.float64)
    keep = [c for c in range(cm.shape[0]) if c not in set(exclude)]
    cm = cm[keep][:, keep]
    names = [classes[c] if classes is not None else str(c) for c in keep]
    inter = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - inter
    total = cm.sum()
    iou = [float(i / u) if u > 0 else None for i, u in zip(inter.tolist(), union.tolist(), strict=True)]
    present = [v for v in iou if v is not None]
    return {
        "pixAcc": float(inter.sum() / total) if total > 0 else math.nan,
        "mIoU": sum(present) / len(present) if present else math.nan,
        "num_classes": len(keep),
        "iou": dict(zip(names, iou, strict=True)),
    }


def background_index(dataset_name: str | None, classes: Sequence[str] | None) -> int | None:
    """The index of the background class when the dataset is Pascal Context with 60 classes, else None."""
    if dataset_name != "pcontext60" or not classes:
        return None
    lowered = [c.lower() for c in classes]
    return lowered.index("background") if "background" in lowered else 0


class SegmentationMetric:
    """Accumulate confusion matrices over a data set (and across processes) and score them.

    ``update(logits_or_probs, target)`` takes ``(C, H, W)`` or ``(B, C, H, W)`` scores and the labels
    of the same size. With ``background=k`` (Pascal Context 60) a second matrix follows the 59-class
    protocol described in the module docstring; :meth:`compute` then adds it under
    ``"without_background"``.
    """

    def __init__(self, num_classes: int, classes: Sequence[str] | None = None, ignore_index: int = IGNORE_INDEX,
                 background: int | None = None, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.classes = list(classes) if classes is not None else None
        self.ignore_index = ignore_index
        self.background = background
        self.cm = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
        self.cm_without_background = torch.zeros_like(self.cm) if background is not None else None

    def reset(self) -> None:
        self.cm.zero_()
        if self.cm_without_background is not None:
            self.cm_without_background.zero_()

    def update(self, scores_: Tensor, target: Tensor) -> None:
        if scores_.dim() == 3:
            scores_, target = scores_[None], target[None]
        if scores_.shape[1] != self.num_classes:
            raise ValueError(f"expected {self.num_classes} class scores, got {scores_.shape[1]}")
        target = target.to(self.cm.device)
        scores_ = scores_.to(self.cm.device)
        self.cm += confusion_matrix(scores_.argmax(1), target, self.num_classes, self.ignore_index)
        if self.cm_without_background is not None:
            bg = self.background
            masked = scores_.clone()
            masked[:, bg] = -math.inf
            target = torch.where(target == bg, torch.full_like(target, self.ignore_index), target)
            self.cm_without_background += confusion_matrix(masked.argmax(1), target, self.num_classes,
                                                           self.ignore_index)

    def update_labels(self, pred: Tensor, target: Tensor, pred_without_background: Tensor | None = None) -> None:
        """Add label maps: the argmax over all classes, and (Pascal Context 60) the argmax without the
        background class, which the 59-class protocol needs; the same as :meth:`update` on the scores."""
        target = target.to(self.cm.device)
        self.cm += confusion_matrix(pred.to(self.cm.device), target, self.num_classes, self.ignore_index)
        if self.cm_without_background is not None:
            if pred_without_background is None:
                raise ValueError("this metric also follows the 59-class protocol: pass pred_without_background "
                                 "(the argmax over the classes other than background)")
            bg = self.background
            target = torch.where(target == bg, torch.full_like(target, self.ignore_index), target)
            self.cm_without_background += confusion_matrix(pred_without_background.to(self.cm.device), target,
                                                           self.num_classes, self.ignore_index)

    def update_confusion(self, pred: Tensor, target: Tensor) -> None:
        """Add hard predictions (label maps); only the main matrix can be filled this way."""
        self.cm += confusion_matrix(pred.to(self.cm.device), target.to(self.cm.device), self.num_classes,
                                    self.ignore_index)

    def all_reduce(self) -> None:
        """Sum the matrices over all processes (no-op unless torch.distributed is initialised)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.cm)
            if self.cm_without_background is not None:
                dist.all_reduce(self.cm_without_background)

    def compute(self) -> dict[str, Any]:
        out = scores(self.cm, self.classes)
        if self.cm_without_background is not None:
            out["without_background"] = scores(self.cm_without_background, self.classes,
                                               exclude=[self.background])
        return out


def format_metrics(metrics: dict[str, Any]) -> str:
    """One line per protocol, e.g. ``60 classes: pixAcc 78.10%  mIoU 49.20%``."""
    lines = [f"{metrics['num_classes']} classes: pixAcc {100 * metrics['pixAcc']:.2f}%  "
             f"mIoU {100 * metrics['mIoU']:.2f}%"]
    extra = metrics.get("without_background")
    if extra:
        lines.append(f"{extra['num_classes']} classes without background: pixAcc {100 * extra['pixAcc']:.2f}%  "
                     f"mIoU {100 * extra['mIoU']:.2f}%")
    return "\n".join(lines)


def metric_for_dataset(num_classes: int, dataset: Any, device: str | torch.device = "cpu") -> SegmentationMetric:
    """The confusion matrix of a model's ``num_classes`` on ``dataset`` (its class names, ignore label and, for
    Pascal Context 60, the background left out as the paper does), which must have as many classes."""
    classes = list(getattr(dataset, "classes", []) or []) or None
    if getattr(dataset, "num_classes", num_classes) != num_classes:
        raise ValueError(f"the model predicts {num_classes} classes but the dataset has {dataset.num_classes}: "
                         "evaluate a checkpoint trained on this dataset's classes")
    return SegmentationMetric(num_classes, classes, ignore_index=getattr(dataset, "ignore_index", IGNORE_INDEX),
                              background=background_index(getattr(dataset, "name", None), classes), device=device)
