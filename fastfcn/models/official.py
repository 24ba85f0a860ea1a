"""Load the checkpoints released with FastFCN / PyTorch-Encoding into our models.

The official training script saves ``{"epoch", "state_dict", "optimizer", "best_pred"}`` where
``state_dict`` uses the official module names (``pretrained.*`` for the backbone, ``jpu.*``,
``head.*``, ``auxlayer.*``), sometimes behind a ``module.`` prefix (DataParallel), and includes the
unused ImageNet classifier ``pretrained.fc.*``. :func:`convert_official_state_dict` renames those
keys to ours; :func:`load_official` builds the matching model and loads it strictly.
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .fastfcn import FastFCN, build_model
from .resnet import BACKBONES

__all__ = ["convert_official_state_dict", "load_official", "read_official_checkpoint", "OfficialCheckpointError",
           "CheckpointReadError", "load_tensor_file", "official_architecture"]


class OfficialCheckpointError(RuntimeError):
    """The checkpoint does not fit the model that was asked for."""


class CheckpointReadError(ValueError):
    """The file is not a readable checkpoint (empty, truncated, corrupt, not written by ``torch.save``), or it
    holds Python objects besides tensors, which are never unpickled unless the caller trusts the file."""


def _first_sentence(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    for stop in (". ", "; "):
        if stop in text:
            text = text[: text.index(stop)]
    return text[:limit]


def load_tensor_file(path: str | Path, trusted: bool = False, what: str = "checkpoint") -> Any:
    """``torch.load`` a file onto the CPU, by default with ``weights_only=True`` (tensors, containers and
    plain values only: nothing is unpickled that could run code).

    Every failure is one :class:`CheckpointReadError` that names the file and says what is wrong: not a
    readable checkpoint (empty, truncated, corrupt, not a PyTorch file), or a file that refers to other Python
    objects (the message says which; ``trusted=True`` loads those, for files from a source you trust).
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise CheckpointReadError(f"{what} {str(path)!r} is a folder, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointReadError(f"{path} is not a readable {what}: the file is empty (0 bytes); "
                                  "copy or download it again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's note on pickle protocols of odd files
            return torch.load(path, map_location="cpu", weights_only=not trusted)
    except PermissionError as exc:
        raise CheckpointReadError(f"cannot read {what} {path}: permission denied") from exc
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the unpickler trips over, the file is the problem
        inner = exc.__context__ if isinstance(exc, pickle.UnpicklingError) and exc.__context__ else exc
        detail = _first_sentence(str(inner)) or type(inner).__name__
        found = re.search(r"GLOBAL\s+(\S+)", str(inner))
        if not trusted and found:
            name = found.group(1)
            if "blocked" in str(inner):
                raise CheckpointReadError(
                    f"{path} is not a {what} we will load: it refers to {name}, which no checkpoint needs and "
                    "which could run commands when unpickled; it was not unpickled") from None
            raise CheckpointReadError(
                f"{path} holds Python objects besides tensors (it refers to {name}); they were not unpickled. "
                "If you trust the file's source, load it fully with trusted=True (CLI: --trusted)") from None
        if isinstance(inner, EOFError) or "EOF" in detail:
            why = "it ends too early (truncated)"
        elif "zip archive" in detail or "central directory" in detail:
            why = f"its zip container is damaged ({detail})"
        else:
            why = f"its content is not a PyTorch checkpoint ({type(inner).__name__}: {detail})"
        raise CheckpointReadError(
            f"{path} is not a readable {what}: {why}. It may be an interrupted download or copy, or not a "
            "checkpoint at all: copy or download it again") from None


def _minus_one(template: str):
    """A replacement that puts the official 1-based index ``\\1`` into ``template`` as 0-based."""
    return lambda m: template.format(int(m.group(1)) - 1)


# (official key prefix pattern, our prefix); the first match wins.
_COMMON_RULES: list[tuple[str, Any]] = [
    (r"^pretrained\.", "backbone."),
    (r"^jpu\.conv([345])\.", r"upsample.conv\1."),
    (r"^jpu\.dilation([1-4])\.0\.conv1\.", _minus_one("upsample.dilations.{}.depthwise.")),
    (r"^jpu\.dilation([1-4])\.0\.bn\.", _minus_one("upsample.dilations.{}.depthwise_bn.")),
    (r"^jpu\.dilation([1-4])\.0\.pointwise\.", _minus_one("upsample.dilations.{}.pointwise.")),
    (r"^jpu\.dilation([1-4])\.1\.", _minus_one("upsample.dilations.{}.bn.")),
    (r"^auxlayer\.conv5\.", "aux_head."),
]
_HEAD_RULES: dict[str, list[tuple[str, Any]]] = {
    "encnet": [
        (r"^head\.conv5\.", "head.conv."),
        (r"^head\.encmodule\.encoding\.([01])\.", r"head.context.conv.\1."),
        (r"^head\.encmodule\.encoding\.3\.", "head.context.encoding."),
        (r"^head\.encmodule\.encoding\.4\.", "head.context.codeword_bn."),
        (r"^head\.encmodule\.fc\.0\.", "head.context.fc."),
        (r"^head\.encmodule\.selayer\.", "head.context.se_classifier."),
        (r"^head\.conv6\.", "head.classifier."),
    ],
    "aspp": [
        (r"^head\.aspp\.b([0-3])\.", r"head.aspp.branches.\1."),
        (r"^head\.aspp\.b4\.gap\.([12])\.", _minus_one("head.aspp.branches.4.conv.{}.")),
        (r"^head\.aspp\.project\.", "head.aspp.project."),
        (r"^head\.block\.", "head.block."),
    ],
    "psp": [
        (r"^head\.conv5\.0\.conv([1-4])\.", _minus_one("head.ppm.stages.{}.")),
        # official conv5 = [PyramidPooling, conv, bn, relu, dropout, classifier]; ours drops the first
        (r"^head\.conv5\.([1-5])\.", _minus_one("head.block.{}.")),
    ],
    "fcn": [(r"^head\.conv5\.", "head.body.")],
}

# how to recognise each official head by its keys (checked in this order: PSP and FCN both have head.conv5)
_HEAD_SIGNS: list[tuple[str, re.Pattern, str]] = [
    ("encnet", re.compile(r"^head\.(encmodule|conv6)\."), "an EncNet head (head.encmodule.*)"),
    ("aspp", re.compile(r"^head\.aspp\."), "an ASPP (DeepLabV3) head (head.aspp.*)"),
    ("psp", re.compile(r"^head\.conv5\.0\.conv[1-4]\."), "a PSP head (head.conv5.0.conv1.*)"),
    ("fcn", re.compile(r"^head\.conv5\.0\.weight$"), "an FCN head (head.conv5.0.weight)"),
]
_LAYER_BLOCK = re.compile(r"^pretrained\.layer([1-4])\.(\d+)\.")


def _checkpoint_head(state: Mapping[str, Tensor]) -> tuple[str, str] | None:
    """(head name, description) of the segmentation head the official keys belong to, if recognised."""
    for name, pattern, description in _HEAD_SIGNS:
        if any(pattern.match(k) for k in state):
            return name, description
    return None


def _checkpoint_backbone(state: Mapping[str, Tensor]) -> str | None:
    """Our name of the official backbone (block type, blocks per stage, stem), if it is one of ours."""
    blocks = [0, 0, 0, 0]
    for key in state:
        m = _LAYER_BLOCK.match(key)
        if m:
            layer, index = int(m.group(1)), int(m.group(2))
            blocks[layer - 1] = max(blocks[layer - 1], index + 1)
    bottleneck = any(k.startswith("pretrained.layer1.0.conv3.") for k in state)
    deep_stem = "pretrained.conv1.0.weight" in state
    for name, (block, layers, deep, width) in BACKBONES.items():
        if width == 64 and layers == blocks and deep == deep_stem and (block.expansion == 4) == bottleneck:
            return name
    return None


def _rename(key: str, head: str) -> str | None:
    for pattern, repl in _COMMON_RULES + _HEAD_RULES[head]:
        new, n = re.subn(pattern, repl, key, count=1)
        if n:
            return new
    return None


def read_official_checkpoint(checkpoint: str | Path | Mapping[str, Any], trusted: bool = False) -> dict[str, Tensor]:
    """The bare official ``state_dict``: unwrap ``{"state_dict": ...}``, drop ``module.`` prefixes."""
    name = "the checkpoint"
    if isinstance(checkpoint, (str, Path)):
        name = str(Path(checkpoint).expanduser())
        obj = load_tensor_file(checkpoint, trusted=trusted)
    else:
        obj = checkpoint
    if not isinstance(obj, Mapping):
        raise OfficialCheckpointError(f"{name} holds a {type(obj).__name__}, not a dict with a state_dict")
    if obj.get("format") == "fastfcn":
        config = obj.get("config") or {}
        what = ", ".join(f"{k}={config[k]!r}" for k in ("head", "backbone", "upsampling") if k in config)
        raise OfficialCheckpointError(
            f"{name} is already a fastfcn checkpoint ({what or 'converted or trained with fastfcn'}): use it "
            "directly with fastfcn eval / predict (or fastfcn.checkpoint.model_from_checkpoint); there is "
            "nothing to convert")
    state = obj.get("state_dict", obj.get("model", obj))
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise OfficialCheckpointError(f"{name} has no state_dict of tensors")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if any(k.startswith("backbone.") for k in state) and not any(k.startswith("pretrained.") for k in state):
        raise OfficialCheckpointError(
            f"{name} has fastfcn's own key names (backbone.*), not the official ones (pretrained.*): it is a "
            "state_dict of a fastfcn model; load it with model.load_state_dict, there is nothing to convert")
    return state


def convert_official_state_dict(state: Mapping[str, Tensor], head: str) -> tuple[dict[str, Tensor], list[str]]:
    """Rename official keys to ours. Returns (converted, keys that have no counterpart here)."""
    converted, unknown = {}, []
    for key, value in state.items():
        if key.startswith("pretrained.fc."):
            continue  # the ImageNet classifier, unused by segmentation
        new = _rename(key, head)
        if new is None:
            unknown.append(key)
        else:
            converted[new] = value
    return converted, unknown


def _describe(keys, limit: int = 12) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_official(checkpoint: str | Path | Mapping[str, Any], *, head: str, backbone: str = "resnet50s",
                  upsampling: str = "jpu", num_classes: int = 59, trusted: bool = False) -> FastFCN:
    """Build our model for this configuration and load an official checkpoint into it (eval mode).

    Whether the auxiliary head and the SE branch exist is read from the checkpoint. Every key must
    find its place and every parameter must be filled: otherwise an error lists what did not fit.
    """
    state = read_official_checkpoint(checkpoint, trusted=trusted)
    head = head.lower() if isinstance(head, str) else head
    _refuse_other_configuration(state, head, backbone, upsampling)
    model = build_model(head, backbone=backbone, upsampling=upsampling, num_classes=num_classes,
                        aux_loss=any(k.startswith("auxlayer.") for k in state),
                        se_loss=any(k.startswith("head.encmodule.selayer.") for k in state))
    converted, unknown = convert_official_state_dict(state, head)
    ours = model.state_dict()
    _refuse_unfit_keys(converted, unknown, ours, f"head={head!r}, backbone={backbone!r}, upsampling={upsampling!r}")
    _refuse_unfit_shapes(converted, ours, num_classes)
    for k in set(ours) - set(converted):
        converted[k] = ours[k]
    model.load_state_dict(converted, strict=True)
    return model.eval()


def _refuse_other_configuration(state: Mapping[str, Tensor], head: str, backbone: str, upsampling: str) -> None:
    """An error saying which argument to change where the checkpoint's head, backbone or upsampling differ."""
    found_head = _checkpoint_head(state)
    if found_head is None and head in _HEAD_RULES:
        raise OfficialCheckpointError(f"head={head!r} but the checkpoint has no segmentation head that we "
                                      "recognise (head.encmodule.*, head.aspp.* or head.conv5.*)")
    if found_head is not None and found_head[0] != head:
        raise OfficialCheckpointError(f"head={head!r} does not fit this checkpoint; it has {found_head[1]}: "
                                      f"use head={found_head[0]!r}")
    found_backbone = _checkpoint_backbone(state)
    if found_backbone is not None and found_backbone != backbone:
        _, layers, deep, _ = BACKBONES[found_backbone]
        raise OfficialCheckpointError(
            f"backbone={backbone!r} does not fit this checkpoint; it has a ResNet with {layers} blocks and "
            f"{'the deep' if deep else 'a 7x7'} stem: use backbone={found_backbone!r}"
        )
    has_jpu = any(k.startswith("jpu.") for k in state)
    if has_jpu != (upsampling == "jpu"):
        hint = "it has JPU weights: use upsampling='jpu'" if has_jpu else "it has no JPU: use upsampling='none'"
        raise OfficialCheckpointError(f"upsampling={upsampling!r} does not fit this checkpoint; {hint}")


def _refuse_unfit_keys(converted: Mapping[str, Tensor], unknown: list[str], ours: Mapping[str, Tensor],
                       configuration: str) -> None:
    """An error listing the keys without a place in our model and the parameters the checkpoint leaves empty."""
    unexpected = sorted(set(unknown) | (set(converted) - set(ours)))
    # checkpoints written before PyTorch 0.4.1 have no BN batch counters; they are not used in eval
    missing = sorted(k for k in set(ours) - set(converted) if not k.endswith("num_batches_tracked"))
    if unexpected or missing:
        raise OfficialCheckpointError(
            f"checkpoint does not fit {configuration}:\n"
            f"  unexpected keys ({len(unexpected)}): {_describe(unexpected)}\n"
            f"  missing keys ({len(missing)}): {_describe(missing)}"
        )


def _refuse_unfit_shapes(converted: Mapping[str, Tensor], ours: Mapping[str, Tensor], num_classes: int) -> None:
    """An error for tensors of other shapes: the number of classes when a classifier's differs."""
    bad = [(k, tuple(v.shape), tuple(ours[k].shape)) for k, v in converted.items() if v.shape != ours[k].shape]
    if not bad:
        return
    # a classifier whose output dimension differs: the number of classes (other dimensions are not)
    cls_keys = [b for b in bad if b[0].endswith(("classifier.1.weight", "classifier.1.bias", "block.4.bias",
                                                "aux_head.4.bias", "se_classifier.bias", "body.4.bias"))
                and b[1][0] != b[2][0]]
    if cls_keys:
        found = cls_keys[0][1][0]
        raise OfficialCheckpointError(
            f"the checkpoint has {found} classes but num_classes={num_classes}; pass num_classes={found}"
        )
    raise OfficialCheckpointError("shape mismatch (key, checkpoint, model): " + "; ".join(map(str, bad[:8])))


def official_architecture(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """What a bare official ``state_dict`` (official key names) was trained as: ``head`` (None when no head is
    recognised), ``upsampling``, and where they can be read, ``backbone`` (our name) and ``jpu_width``."""
    found = _checkpoint_head(state)
    arch: dict[str, Any] = {"head": found[0] if found else None,
                            "upsampling": "jpu" if any(k.startswith("jpu.") for k in state) else "none"}
    backbone = _checkpoint_backbone(state)
    if backbone is not None:
        arch["backbone"] = backbone
    if "jpu.conv5.0.weight" in state:
        arch["jpu_width"] = int(state["jpu.conv5.0.weight"].shape[0])
    return arch
