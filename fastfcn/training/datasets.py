"""The datasets of a training run, and the up-front check of those read from disk."""

from __future__ import annotations

import warnings
from typing import Any

from .config import TrainConfig

__all__ = ["training_datasets", "checked_datasets"]


def training_datasets(cfg: TrainConfig, with_val: bool) -> tuple[Any, Any]:
    """The train set (with the training augmentation) and, ``with_val``, the val set of a resolved config."""
    from ..data import build_dataset
    from ..data.transforms import EvalTransform, TrainTransform

    kwargs: dict[str, Any] = {"image_size": cfg.image_size} if cfg.dataset == "procedural" else {}
    if cfg.dataset == "folder":
        kwargs.update({k: getattr(cfg, k) for k in ("ignore_value", "val_fraction") if getattr(cfg, k) is not None})
    train_kwargs = dict(kwargs)
    if cfg.dataset == "procedural" and cfg.num_images is not None:
        train_kwargs["num_images"] = cfg.num_images
    transform = TrainTransform(cfg.crop_size, scale_range=tuple(cfg.scale_range), base_size=cfg.base_size, flip=True)
    train_set = build_dataset(cfg.dataset, split=cfg.split, root=cfg.root, transform=transform, **train_kwargs)
    val_set = None
    if with_val:
        val_set = build_dataset(cfg.dataset, split=cfg.val_split, root=cfg.root, transform=EvalTransform(), **kwargs)
    return train_set, val_set


def checked_datasets(cfg: TrainConfig, show: bool) -> tuple[Any, Any] | None:
    """An on-disk dataset's train (and val) sets, every pair checked before the run touches its folder
    (:mod:`fastfcn.data.check`: a :class:`~fastfcn.data.check.DataCheckError` unless ``cfg.skip_bad``);
    None for the procedural set, which is drawn, not read. ``show``: say which pairs ``skip_bad`` leaves out."""
    from ..data.check import check_or_raise
    from ..data.registry import ON_DISK

    if cfg.dataset not in ON_DISK:
        return None
    train_set, val_set = training_datasets(cfg, with_val=cfg.eval_every > 0)
    check_or_raise([d for d in (train_set, val_set) if d is not None], cfg.skip_bad, "trained",
                   warn=(lambda text: warnings.warn(text, stacklevel=2)) if show else None)
    return train_set, val_set
