"""Our checkpoint format: the weights plus everything needed to rebuild the model.

``{"format": "fastfcn", "version": 1, "config": build_model kwargs, "state_dict": ...,
"classes": [names] or None, ...extra}``. Files are written atomically (:mod:`fastfcn.utils.io`), so
an interrupted save never leaves a truncated checkpoint behind.

Reading never unpickles anything but tensors and plain values (``torch.load(..., weights_only=True)``).
A file that is not a readable checkpoint (empty, truncated, random bytes, a pickle of other objects), one
written by another program, or one whose configuration or weights do not describe a model of this version
gives one ``ValueError`` that names the file and says what is wrong.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from .models import FastFCN, build_model
from .models.official import CheckpointReadError, load_tensor_file
from .utils.io import atomic_save

__all__ = ["save_checkpoint", "load_checkpoint", "model_from_checkpoint", "CheckpointReadError"]

FORMAT = "fastfcn"
VERSION = 1


def save_checkpoint(model: FastFCN, path: str | Path, classes: list[str] | None = None, **extra: Any) -> Path:
    """Write the checkpoint atomically. A failed write (disk full, folder not writable) raises ``OSError``
    naming ``path``; the previous file at ``path``, if any, is left as it was."""
    state = {"format": FORMAT, "version": VERSION, "config": dict(model.config),
             "state_dict": model.state_dict(), "classes": list(classes) if classes is not None else None}
    state.update(extra)
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "is a folder; give a file name for the checkpoint", str(path))
    try:
        return atomic_save(state, path)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write the checkpoint: {exc.strerror or exc}; the previous file, if any, "
                      "is unchanged", str(path)) from None
    except RuntimeError as exc:
        # torch's writer reports a failed write as "[enforce fail at inline_container.cc:...] unexpected pos"
        # or "PytorchStreamWriter failed writing file ..."; the cause is the file system
        reason = " ".join(str(exc).split())[:160]
        raise OSError(f"cannot write checkpoint {path}: the write failed ({reason}); is the disk full or the "
                      "folder not writable? The previous file, if any, is unchanged") from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dict; ``ValueError`` (one line, naming the file) when it is not one of ours."""
    path = Path(path).expanduser()
    obj = load_tensor_file(path)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a fastfcn checkpoint; for an official FastFCN checkpoint run "
            f"'fastfcn convert {path} OUT.pth --head ...' first"
        )
    if not isinstance(obj.get("config"), Mapping) or not isinstance(obj.get("state_dict"), Mapping):
        missing = [k for k in ("config", "state_dict") if not isinstance(obj.get(k), Mapping)]
        raise ValueError(f"{path} is a damaged fastfcn checkpoint: it has no {' and no '.join(missing)} dict; "
                         "use another copy or train it again")
    return obj


def _build_kwargs(path: Path, stored: Mapping[str, Any]) -> dict[str, Any]:
    config = dict(stored)
    if "aux" in config and "aux_loss" not in config:  # checkpoints written before aux was renamed aux_loss
        config["aux_loss"] = config.pop("aux")
    config.pop("aux", None)
    config.pop("weights_backbone", None)  # the weights come from the state_dict
    params = inspect.signature(build_model).parameters
    unknown = sorted(k for k in config if k not in params)
    if unknown:
        raise ValueError(f"{path}: its model config has settings this fastfcn version does not know: "
                         f"{', '.join(map(repr, unknown))}; it was written by another version of fastfcn")
    if "head" not in config:
        raise ValueError(f"{path}: its model config does not say which head the model has ('head' is missing); "
                         "the checkpoint is damaged")
    return config


def _fit_problems(model: FastFCN, state: Mapping[str, Any]) -> str:
    ours = model.state_dict()
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours))
    bad = sorted(k for k in set(ours) & set(state)
                 if not isinstance(state[k], Tensor) or tuple(state[k].shape) != tuple(ours[k].shape))
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("of another shape", bad)):
        if keys:
            parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
    return ", ".join(parts)


def model_from_checkpoint(path: str | Path) -> tuple[FastFCN, dict[str, Any]]:
    """Rebuild the model from the stored configuration, load the weights, return it in eval mode."""
    path = Path(path).expanduser()
    ckpt = load_checkpoint(path)
    config = _build_kwargs(path, ckpt["config"])
    try:
        model = build_model(**config)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot rebuild the model from its config ({exc})") from None
    problems = _fit_problems(model, ckpt["state_dict"])
    if problems:
        raise ValueError(f"{path}: the weights do not fit the model its config describes ({config['head']}, "
                         f"{config.get('backbone', '?')}, {config.get('upsampling', '?')}): parameters {problems}; "
                         "the checkpoint is damaged or was edited")
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt
