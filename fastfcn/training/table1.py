"""The recipes of the paper's Table 1 in this package: its rows, and how each row and seed is trained per profile.

* :data:`TABLE1_UPSAMPLINGS` / :func:`table1_rows` -- EncNet with four ways to reach output stride 8, ASPP and
  PSP without and with JPU, in the paper's order;
* :data:`UPSAMPLING_LABELS`, :data:`HEAD_LABELS`, :data:`UPSAMPLING_COLOURS` -- what the rows are called and
  drawn with, the same in every chapter, on the front page and in the reproduction report;
* :func:`table1_config` -- one row and seed as a :class:`~fastfcn.training.TrainConfig`: Pascal Context from
  ImageNet weights in ``full``; in ``smoke`` and ``quick`` the procedural scenes, fine-tuned from the book's own
  pretrained trunk, in float32 on every machine;
* :func:`pretrain_config` -- that trunk's pretraining, the stand-in for ImageNet: a plain FCN (output stride
  32, bilinear) on the ``pretrain`` scenes, which no row trains or is evaluated on.

Where the runs live, and how a finished one is found again, is the book's business
(:mod:`fastfcn.book.trainings`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .config import TrainConfig

__all__ = ["TABLE1_UPSAMPLINGS", "UPSAMPLING_LABELS", "HEAD_LABELS", "UPSAMPLING_COLOURS", "PRETRAIN_LR", "Trunk",
           "table1_rows", "table1_config", "pretrain_config", "stamp_scene_version"]

# the upsamplings of each head's rows (build_model's names; fastfcn.models.UPSAMPLINGS lists them all)
TABLE1_UPSAMPLINGS: dict[str, tuple[str, ...]] = {"encnet": ("none", "bilinear", "fpn", "jpu"),
                                                  "aspp": ("none", "jpu"), "psp": ("none", "jpu")}
UPSAMPLING_LABELS: dict[str, str] = {"none": "dilated (OS 8)", "bilinear": "bilinear", "fpn": "FPN", "jpu": "JPU"}
HEAD_LABELS: dict[str, str] = {"encnet": "EncNet", "aspp": "ASPP", "psp": "PSP"}
# one colour per way of reaching output stride 8, the same in every plot
UPSAMPLING_COLOURS: dict[str, str] = {"none": "tab:orange", "bilinear": "tab:gray", "fpn": "tab:green",
                                      "jpu": "tab:red"}

# lr 0.01 (head 0.1) for the pretraining: it reached a lower loss than the from-scratch default of 0.005 in
# 600 iterations of the prototype
PRETRAIN_LR = 0.01


@dataclass
class Trunk:
    """The backbone every row of the miniature starts from: its weights file and what made it."""

    path: Path         # a state_dict of the backbone alone (``weights_backbone`` of the rows)
    identity: str      # digest of the pretraining's configuration: what the rows' run identities record
    training: Any = None  # the pretraining run itself, where known (a fastfcn.book.trainings.Training)


def table1_rows(heads: Sequence[str]) -> list[tuple[str, str]]:
    """The ``(head, upsampling)`` rows of Table 1 for the given heads, in the paper's order."""
    unknown = [h for h in heads if h not in TABLE1_UPSAMPLINGS]
    if unknown:
        raise ValueError(f"unknown head {unknown[0]!r}; Table 1 has {', '.join(TABLE1_UPSAMPLINGS)}")
    return [(h, u) for h in TABLE1_UPSAMPLINGS if h in heads for u in TABLE1_UPSAMPLINGS[h]]


def stamp_scene_version(config: TrainConfig) -> TrainConfig:
    """``config`` with the procedural generator's version in ``extra`` (part of what a run is)."""
    if config.dataset != "procedural" or "scene_version" in config.extra:
        return config
    from ..data.procedural import ProceduralScenes

    return replace(config, extra={**config.extra, "scene_version": ProceduralScenes.version})


def table1_config(profile: Mapping[str, Any], head: str, upsampling: str, seed: int, *, device: str = "auto",
                  root: str | Path | None = None, weights: str | None = None, trunk: Trunk | None = None,
                  channels_last: bool = True) -> TrainConfig:
    """The training of one Table 1 row and seed under ``profile`` (a :func:`fastfcn.profiles.get_profile`).

    Every row gets the same recipe, data, iterations and initial backbone weights. ``full`` trains on Pascal
    Context (59 classes) from ImageNet weights (``weights``: a local file, else torchvision's) with mixed
    precision, as the official code; the other profiles fine-tune ``trunk`` (``None``: random initial weights)
    on the procedural scenes in float32, so that every CPU trains the same networks (bf16 is native on some
    CPUs only). ``channels_last`` changes the speed, not the result.
    """
    iterations = profile["ablation_iterations"]
    common = dict(head=head, upsampling=upsampling, seed=seed, device=device, backbone=profile["small_backbone"],
                  jpu_width=profile["jpu_width"], iterations=iterations, batch_size=profile["ablation_batch_size"],
                  workers=profile["ablation_workers"], eval_every=0, channels_last=channels_last, progress=False,
                  log_every=max(1, iterations // 50))
    if getattr(profile, "name", None) == "full":
        return TrainConfig(dataset="pcontext", root=None if root is None else str(root), amp=True,
                           weights_backbone=weights or "imagenet", crop_size=profile["train_image_size"], **common)
    extra = {} if trunk is None else {"trunk": trunk.identity}
    return stamp_scene_version(TrainConfig(dataset="procedural", image_size=profile["train_image_size"], amp=False,
                                           num_images=profile["ablation_train_images"], extra=extra,
                                           weights_backbone=None if trunk is None else str(trunk.path), **common))


def pretrain_config(profile: Mapping[str, Any], seed: int = 0, *, device: str = "auto",
                    channels_last: bool = True) -> TrainConfig:
    """The pretraining of the trunk every row of the miniature starts from (``smoke`` and ``quick``).

    The paper fine-tunes every row from one ImageNet-pretrained ResNet; here the stand-in is a plain FCN
    (output stride 32, bilinear upsampling, the trunk the rows use) trained on the ``pretrain`` scenes. Its
    trunk is then used dilated or not, as ImageNet weights are.
    """
    if getattr(profile, "name", None) == "full":
        raise ValueError("the full profile starts from ImageNet weights; it pretrains nothing")
    iterations = profile["pretrain_iterations"]
    return stamp_scene_version(TrainConfig(
        dataset="procedural", split="pretrain", image_size=profile["train_image_size"],
        num_images=profile["pretrain_images"], head="fcn", upsampling="bilinear", backbone=profile["small_backbone"],
        iterations=iterations, batch_size=profile["ablation_batch_size"], lr=PRETRAIN_LR, seed=seed, device=device,
        workers=profile["ablation_workers"], eval_every=0, amp=False, channels_last=channels_last, progress=False,
        log_every=max(1, iterations // 50)))
