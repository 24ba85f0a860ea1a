"""Our checkpoint format: the weights plus everything needed to rebuild the model.

``{"format": "fastfcn", "version": 1, "config": build_model kwargs, "state_dict": ...,
"classes": [names] or None, ...extra}``. Files are written atomically (:mod:`fastfcn.utils.io`), so
an interrupted save never leaves a truncated checkpoint behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .model import FastFCN, build_model
from .utils.io import atomic_save

__all__ = ["save_checkpoint", "load_checkpoint", "model_from_checkpoint"]

FORMAT = "fastfcn"
VERSION = 1


def save_checkpoint(model: FastFCN, path: str | Path, classes: list[str] | None = None, **extra: Any) -> Path:
    state = {"format": FORMAT, "version": VERSION, "config": dict(model.config),
             "state_dict": model.state_dict(), "classes": list(classes) if classes is not None else None}
    state.update(extra)
    return atomic_save(state, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a fastfcn checkpoint; for an official FastFCN checkpoint run "
            f"'fastfcn convert {path} OUT.pth --head ...' first"
        )
    return obj


def model_from_checkpoint(path: str | Path) -> tuple[FastFCN, dict[str, Any]]:
    """Rebuild the model from the stored configuration, load the weights, return it in eval mode."""
    ckpt = load_checkpoint(path)
    config = dict(ckpt["config"])
    if "aux" in config:  # checkpoints written before build_model's aux was renamed aux_loss
        config["aux_loss"] = config.pop("aux")
    model = build_model(**config)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt
