"""The training loss of FastFCN (as EncNet's): pixel-wise cross-entropy plus two auxiliary terms.

``loss = CE(out, y) + aux_weight * CE(aux, y) + se_weight * BCE(se, presence(y))``

* ``out``: the main logits, ``aux``: the auxiliary FCN head on C4 (both at the label's resolution);
  pixels labelled ``ignore_index`` (:data:`fastfcn.data.IGNORE_INDEX`, 255) count in neither.
* ``se``: EncNet's per-image class-presence logits, trained with binary cross-entropy against the
  vector "class ``c`` occurs in this image's label map" (ignored pixels do not make a class present).

Weights as in the official code: ``aux`` 0.2 for EncNet and 0.4 for PSP/DeepLab (ASPP), ``se`` 0.2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.base import IGNORE_INDEX

__all__ = ["SegmentationLoss", "class_presence", "default_aux_weight", "unlabelled_batch", "DEFAULT_SE_WEIGHT"]

DEFAULT_SE_WEIGHT = 0.2


def default_aux_weight(head: str) -> float:
    """0.2 for EncNet, 0.4 for the other heads (PSP, ASPP and the plain FCN)."""
    return 0.2 if head == "encnet" else 0.4


def class_presence(target: Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """``(B, H, W)`` labels -> ``(B, num_classes)`` float vector, 1 where the class occurs in the image."""
    if target.dim() != 3:
        raise ValueError(f"expected labels of shape (B, H, W), got {tuple(target.shape)}")
    b = target.shape[0]
    flat = target.reshape(b, -1).long()
    valid = (flat >= 0) & (flat < num_classes) & (flat != ignore_index)
    # one bincount over "image index * C + class" for the whole batch
    keys = (torch.arange(b, device=flat.device)[:, None] * num_classes + flat)[valid]
    counts = torch.bincount(keys, minlength=b * num_classes).reshape(b, num_classes)
    return (counts > 0).float()


class SegmentationLoss(nn.Module):
    """Combine the outputs of :class:`fastfcn.models.FastFCN` into one scalar loss.

    ``forward(outputs, target)`` returns ``(total, parts)`` where ``parts`` holds the detached
    ``ce``, ``aux`` and ``se`` terms (unweighted) for logging. A term whose output is missing or
    whose weight is 0 is skipped.
    """

    def __init__(self, num_classes: int, aux_weight: float = 0.2, se_weight: float = DEFAULT_SE_WEIGHT,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.aux_weight = float(aux_weight)
        self.se_weight = float(se_weight)
        self.ignore_index = ignore_index

    def forward(self, outputs: dict[str, Tensor], target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        target = target.long()
        ce = F.cross_entropy(outputs["out"].float(), target, ignore_index=self.ignore_index)
        total = ce
        parts = {"ce": ce.detach()}
        if self.aux_weight and outputs.get("aux") is not None:
            aux = F.cross_entropy(outputs["aux"].float(), target, ignore_index=self.ignore_index)
            total = total + self.aux_weight * aux
            parts["aux"] = aux.detach()
        if self.se_weight and outputs.get("se") is not None:
            presence = class_presence(target, self.num_classes, self.ignore_index)
            se = F.binary_cross_entropy_with_logits(outputs["se"].float(), presence)
            total = total + self.se_weight * se
            parts["se"] = se.detach()
        return total, parts

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, aux_weight={self.aux_weight}, se_weight={self.se_weight}"



def unlabelled_batch(masks: Tensor, ignore_index: int | None) -> str | None:
    """Why a batch's loss is NaN whatever the learning rate, or None: not one pixel of it is labelled (every
    cross-entropy averages over no pixel)."""
    if ignore_index is None or bool((masks != ignore_index).any()):
        return None
    return (f"Every pixel of this batch is labelled {ignore_index} (ignored): the loss averages over no pixel, so "
            "the learning rate is not the cause; check the masks (their values, and the ignore value of your data).")
