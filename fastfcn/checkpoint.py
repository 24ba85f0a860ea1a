"""Our checkpoint format: the weights plus everything needed to rebuild the model.

``{"format": "fastfcn", "version": 1, "config": build_model kwargs, "state_dict": ...,
"classes": [names] or None, ...extra}``. Files are written atomically (temporary file + rename), so
an interrupted save never leaves a truncated checkpoint behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .model import FastFCN, build_model

__all__ = ["atomic_write", "atomic_save", "save_checkpoint", "load_checkpoint", "model_from_checkpoint"]

FORMAT = "fastfcn"
VERSION = 1


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on a temporary file in the same folder, then rename it over ``path``.

    Readers see either the old file or the complete new one, never a truncated file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda f: torch.save(obj, f))


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
    model = build_model(**ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt
