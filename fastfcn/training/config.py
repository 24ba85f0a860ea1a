"""``TrainConfig``: every setting of a training run, with the per-dataset defaults of the paper."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrainConfig", "DATASET_DEFAULTS", "RUNTIME_FIELDS", "config_differences"]

# Defaults per dataset. Pascal Context / ADE20K: the paper (lr 0.001 / 0.01 at batch 16, 80 / 120 epochs,
# 480 crops from images whose long side is scaled around 520). The official options scale lr linearly
# with the batch size (lr * batch / 16); so do we. The procedural set (offline, trained from scratch on a
# CPU) uses a ResNet-18 and a 128-wide JPU from random weights; lr 0.005 (head 0.05) was the best of
# 0.0025-0.05 after 100 and 300 iterations (mIoU 0.50 vs 0.44 for 0.01 at 300; 0.02 and 0.05 trailed).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "procedural": {"lr": 0.005, "epochs": 4, "batch_size": 8, "crop_size": None, "base_size": None,
                   "backbone": "resnet18", "jpu_width": 128, "eval_every": 1, "workers": 2},
    "pcontext": {"lr": 0.001, "epochs": 80, "batch_size": 16, "crop_size": 480, "base_size": 520,
                 "backbone": "resnet50", "jpu_width": 512, "eval_every": 0, "workers": 8},
    "ade20k": {"lr": 0.01, "epochs": 120, "batch_size": 16, "crop_size": 480, "base_size": 520,
               "backbone": "resnet50", "jpu_width": 512, "eval_every": 0, "workers": 8},
}
DATASET_DEFAULTS["pcontext60"] = dict(DATASET_DEFAULTS["pcontext"])
PROCEDURAL_IMAGE_SIZE = 128
REFERENCE_BATCH = 16

# Fields that may differ between a run and its resumption (they do not change the result).
RUNTIME_FIELDS = frozenset({"root", "out_dir", "device", "amp", "workers", "log_every", "progress",
                            "stop_after_epochs", "eval_every", "eval_limit", "overwrite"})


@dataclass
class TrainConfig:
    """Everything a run depends on. ``None`` means "the dataset's default" (see ``DATASET_DEFAULTS``)."""

    dataset: str = "procedural"
    root: str | None = None              # dataset folder (not used by "procedural")
    split: str = "train"
    val_split: str = "val"
    image_size: int | None = None        # procedural only: side of the generated images (128)
    num_images: int | None = None        # procedural only: images in the train split (1000)
    head: str = "encnet"
    backbone: str | None = None
    upsampling: str = "jpu"
    jpu_width: int | None = None
    weights_backbone: str | None = None  # None (random init), "imagenet" or a local file
    num_classes: int | None = None       # taken from the dataset; given, it must agree
    aux_weight: float | None = None      # 0.2 EncNet, 0.4 PSP/ASPP/FCN; 0 disables the aux head
    se_weight: float | None = None       # 0.2 EncNet; 0 disables the SE branch
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 1e-4
    power: float = 0.9
    head_lr_mult: float = 10.0
    epochs: int | None = None
    iterations: int | None = None        # total iterations; overrides epochs (the last epoch is cut short)
    batch_size: int | None = None        # global batch (all processes together)
    crop_size: int | None = None
    base_size: int | None = None
    scale_range: tuple[float, float] = (0.5, 2.0)
    workers: int | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None              # None: on with CUDA, off on the CPU
    out_dir: str = "runs/train"
    log_every: int = 20
    eval_every: int | None = None        # evaluate on val_split every N epochs (0: never; the last epoch too)
    eval_limit: int | None = None        # evaluate on the first N val images only
    stop_after_epochs: int | None = None  # leave after N epochs of this invocation (resume later)
    progress: bool = True
    overwrite: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes stored with the run

    def resolved(self, num_classes: int | None = None) -> TrainConfig:
        """A copy with every ``None`` default filled in for the dataset."""
        if self.dataset not in DATASET_DEFAULTS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASET_DEFAULTS)}")
        d = DATASET_DEFAULTS[self.dataset]
        c = dataclasses.replace(self, scale_range=tuple(self.scale_range), extra=dict(self.extra))
        if c.dataset == "procedural":
            c.image_size = c.image_size or PROCEDURAL_IMAGE_SIZE
            c.crop_size = c.crop_size or c.image_size
            c.base_size = c.base_size or c.image_size
        elif c.image_size is not None or c.num_images is not None:
            raise ValueError("image_size and num_images apply to the procedural dataset only")
        for key in ("backbone", "jpu_width", "epochs", "batch_size", "crop_size", "base_size", "eval_every",
                    "workers"):
            if getattr(c, key) is None:
                setattr(c, key, d[key])
        if c.lr is None:
            c.lr = d["lr"] * c.batch_size / REFERENCE_BATCH if c.dataset != "procedural" else d["lr"]
        if c.aux_weight is None:
            from .losses import default_aux_weight

            c.aux_weight = default_aux_weight(c.head)
        if c.se_weight is None:
            c.se_weight = 0.2 if c.head == "encnet" else 0.0
        if c.se_weight and c.head != "encnet":
            raise ValueError(f"the SE loss belongs to EncNet; head {c.head!r} needs se_weight 0")
        if num_classes is not None:
            if c.num_classes is not None and c.num_classes != num_classes:
                raise ValueError(f"num_classes={c.num_classes} but the {c.dataset} dataset has {num_classes}")
            c.num_classes = num_classes
        for key in ("epochs", "batch_size", "crop_size", "base_size", "log_every"):
            if getattr(c, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(c, key)}")
        if c.iterations is not None and c.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {c.iterations}")
        if not c.lr > 0:
            raise ValueError(f"lr must be > 0, got {c.lr}")
        return c

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["scale_range"] = list(d["scale_range"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training options: {', '.join(sorted(unknown))}")
        d = dict(d)
        if "scale_range" in d:
            d["scale_range"] = tuple(d["scale_range"])
        return cls(**d)


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The settings (runtime fields aside) in which two ``to_dict()`` configurations differ."""
    return [f"{k}: checkpoint {old.get(k)!r} vs now {new.get(k)!r}" for k in sorted(set(old) | set(new))
            if k not in RUNTIME_FIELDS and k != "extra" and old.get(k) != new.get(k)]
