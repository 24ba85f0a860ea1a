"""The official optimisation details: the "poly" learning-rate schedule and the 10x head learning rate."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["poly_lr", "param_groups", "set_lr"]


def poly_lr(base_lr: float, iteration: int, max_iterations: int, power: float = 0.9) -> float:
    """The "poly" schedule: ``base_lr * (1 - iteration / max_iterations) ** power`` (0 at the end)."""
    return base_lr * (1.0 - min(iteration, max_iterations) / max_iterations) ** power


def param_groups(model: nn.Module, lr: float, head_lr_mult: float = 10.0) -> list[dict[str, Any]]:
    """SGD groups: the backbone at ``lr``; upsampling (JPU/FPN), head and aux head at ``head_lr_mult * lr``.

    Empty groups are dropped. Each group carries ``lr_mult`` and ``name`` so that :func:`set_lr` can
    rescale it; every trainable parameter must belong to one of the four modules.
    """
    groups = []
    for name, mult in (("backbone", 1.0), ("upsample", head_lr_mult), ("head", head_lr_mult),
                       ("aux_head", head_lr_mult)):
        module = getattr(model, name, None)
        params = [p for p in module.parameters() if p.requires_grad] if module is not None else []
        if params:
            groups.append({"params": params, "lr": lr * mult, "lr_mult": mult, "name": name})
    covered = {id(p) for g in groups for p in g["params"]}
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in covered]
    if missing:
        raise ValueError(f"parameters outside backbone/upsample/head/aux_head: {missing[:5]}")
    return groups


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group to ``lr`` times its ``lr_mult``."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)
