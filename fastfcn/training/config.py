"""``TrainConfig``: every setting of a training run, with the per-dataset defaults of the paper."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..utils.threads import usable_cpus

__all__ = ["TrainConfig", "ConfigError", "DATASET_DEFAULTS", "RUNTIME_FIELDS", "config_differences",
           "check_stored_config"]

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
# your own data (fine-tuned from a checkpoint, usually): the Pascal Context recipe, fewer epochs, a val pass
# every 5. Cityscapes: the ADE20K recipe with larger crops of images scaled to a 1024 long side.
DATASET_DEFAULTS["folder"] = {**DATASET_DEFAULTS["pcontext"], "epochs": 50, "eval_every": 5}
DATASET_DEFAULTS["cityscapes"] = {**DATASET_DEFAULTS["ade20k"], "epochs": 240, "batch_size": 8, "crop_size": 768,
                                  "base_size": 1024}
PROCEDURAL_IMAGE_SIZE = 128
REFERENCE_BATCH = 16

# Fields that may differ between a run and its resumption (they do not change the result).
# amp, amp_dtype and channels_last change the rounding, not what is learned: a run may resume with others.
RUNTIME_FIELDS = frozenset({"root", "out_dir", "device", "amp", "amp_dtype", "channels_last", "workers", "log_every",
                            "progress", "stop_after_epochs", "eval_every", "eval_limit", "overwrite",
                            # init: the starting weights of a new run (a resumed one has its own); skip_bad: a
                            # resumption checks the data again and may leave out other pairs
                            "init", "skip_bad"})
# Fields added after checkpoints were written without them: a stored setting may lack them (None = the default)
LATER_FIELDS = frozenset({"ignore_value", "val_fraction"})
AMP_DTYPES = ("fp16", "bf16")

# The allowed values of the numeric fields (None, where a field allows it, means "the default").
# Integers: the smallest value. Crops and images below 8 pixels break the network's resizing.
INT_MINIMUM = {"image_size": 8, "num_images": 1, "jpu_width": 1, "num_classes": 1, "epochs": 1, "iterations": 1,
               "batch_size": 1, "crop_size": 8, "base_size": 8, "workers": 0, "seed": 0, "log_every": 1,
               "eval_every": 0, "eval_limit": 1, "stop_after_epochs": 1, "ignore_value": 0}
# Floats: (lowest, lowest allowed?, highest or None, highest allowed?); every value must be finite.
FLOAT_RANGE = {"aux_weight": (0.0, True, None, False), "se_weight": (0.0, True, None, False),
               "lr": (0.0, False, None, False), "momentum": (0.0, True, 1.0, False),
               "weight_decay": (0.0, True, None, False), "power": (0.0, True, None, False),
               "head_lr_mult": (0.0, False, None, False), "val_fraction": (0.0, False, 1.0, False)}
MAX_SEED = 2**63 - 1


class ConfigError(ValueError):
    """A setting out of its range; ``field`` names it, :meth:`message` words it for a given name (a flag)."""

    def __init__(self, field: str, requirement: str, value: Any) -> None:
        self.field, self.requirement, self.value = field, requirement, value
        super().__init__(self.message(field))

    def message(self, name: str) -> str:
        return f"{name} must be {self.requirement}, got {self.value!r}"


def _float_requirement(lo: float, lo_ok: bool, hi: float | None, hi_ok: bool) -> str:
    text = f"a finite number {'>=' if lo_ok else '>'} {lo:g}"
    return text + (f" and {'<=' if hi_ok else '<'} {hi:g}" if hi is not None else "")


def _check_fields(c: TrainConfig) -> None:
    """Range and finiteness of every numeric field (``None`` passes: a default is filled in later)."""
    for key, low in INT_MINIMUM.items():
        value = getattr(c, key)
        high = MAX_SEED if key == "seed" else None
        requirement = f"an integer >= {low}" + (f" and <= {high}" if high else "")
        if value is None and key not in ("seed", "log_every"):
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
            raise ConfigError(key, requirement, value)
    for key, (lo, lo_ok, hi, hi_ok) in FLOAT_RANGE.items():
        value = getattr(c, key)
        if value is None and key in ("aux_weight", "se_weight", "lr", "val_fraction"):
            continue
        ok = (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
              and (value >= lo if lo_ok else value > lo)
              and (hi is None or (value <= hi if hi_ok else value < hi)))
        if not ok:
            raise ConfigError(key, _float_requirement(lo, lo_ok, hi, hi_ok), value)
    sr = c.scale_range
    if not (isinstance(sr, tuple | list) and len(sr) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in sr)
            and 0 < sr[0] <= sr[1]):
        raise ConfigError("scale_range", "two finite numbers LOW HIGH with 0 < LOW <= HIGH", sr)
    if c.amp_dtype is not None and c.amp_dtype not in AMP_DTYPES:
        raise ConfigError("amp_dtype", f"one of {', '.join(AMP_DTYPES)}", c.amp_dtype)


@dataclass
class TrainConfig:
    """Everything a run depends on. ``None`` means "the dataset's default" (see ``DATASET_DEFAULTS``)."""

    dataset: str = "procedural"
    root: str | None = None              # dataset folder ("procedural": where its scenes are cached, optional)
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
    amp: bool | None = None              # mixed precision. None: on with CUDA, off on the CPU
    amp_dtype: str | None = None         # None: fp16 on CUDA, bf16 on the CPU (fp32 where the CPU emulates bf16)
    channels_last: bool = False          # NHWC activations (faster convolutions on CPUs)
    out_dir: str = "runs/train"
    log_every: int = 20
    eval_every: int | None = None        # evaluate on val_split every N epochs (0: never; the last epoch too)
    eval_limit: int | None = None        # evaluate on the first N val images only
    stop_after_epochs: int | None = None  # leave after N epochs of this invocation (resume later)
    progress: bool = True
    overwrite: bool = False
    ignore_value: int | None = None      # folder only: the mask value of ignored pixels (255)
    val_fraction: float | None = None    # folder only: the share of the pairs for val without images/val (0.2)
    skip_bad: bool = False               # leave out the pairs the up-front data check refuses (else: stop)
    init: str | None = None              # a new run starts from this checkpoint's weights where their shapes fit
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes stored with the run

    def __post_init__(self) -> None:
        _check_fields(self)  # every construction (and dataclasses.replace) checks the ranges

    def resolved(self, num_classes: int | None = None) -> TrainConfig:
        """A copy with every ``None`` default filled in for the dataset."""
        if self.dataset not in DATASET_DEFAULTS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASET_DEFAULTS)}")
        d = DATASET_DEFAULTS[self.dataset]
        _check_fields(self)  # again: a field may have been assigned after construction
        c = dataclasses.replace(self, scale_range=tuple(self.scale_range), extra=dict(self.extra))
        if c.dataset == "procedural":  # None is "not given"; 0 is a value (and refused above)
            c.image_size = PROCEDURAL_IMAGE_SIZE if c.image_size is None else c.image_size
            c.crop_size = c.image_size if c.crop_size is None else c.crop_size
            c.base_size = c.image_size if c.base_size is None else c.base_size
        elif c.image_size is not None or c.num_images is not None:
            raise ValueError("image_size and num_images apply to the procedural dataset only")
        if c.dataset != "folder" and (c.ignore_value is not None or c.val_fraction is not None):
            raise ValueError("ignore_value and val_fraction apply to the folder dataset only")
        for key in ("backbone", "jpu_width", "epochs", "batch_size", "crop_size", "base_size", "eval_every",
                    "workers"):
            if getattr(c, key) is None:
                setattr(c, key, d[key])
        if self.workers is None:  # the recipe's 8 loaders per GPU, but no more than the CPUs this process may use
            c.workers = min(c.workers, usable_cpus())
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
        _check_fields(c)
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


def check_stored_config(stored: Any, source: str | Path) -> dict[str, Any]:
    """The ``train_config`` of checkpoint ``source``, checked: a dict of known options, none missing.

    One-line ``ValueError`` naming the file and the key otherwise (a checkpoint of another version).
    """
    if not isinstance(stored, dict):
        raise ValueError(f"{source} holds no usable training settings (train_config is "
                         f"{type(stored).__name__}); cannot resume it, start a new run")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(stored) - known)
    if unknown:
        raise ValueError(f"{source}: its training settings hold the unknown option {unknown[0]!r}"
                         f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}, written by another "
                         f"version of fastfcn; cannot resume it with this one, start a new run")
    missing = sorted(known - set(stored) - RUNTIME_FIELDS - LATER_FIELDS - {"extra"})
    if missing:
        raise ValueError(f"{source}: its training settings lack the option {missing[0]!r}"
                         f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}, written by another "
                         f"version of fastfcn; cannot resume it with this one, start a new run")
    return stored


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The settings (runtime fields aside) in which two ``to_dict()`` configurations differ."""
    return [f"{k}: checkpoint {old.get(k)!r} vs now {new.get(k)!r}" for k in sorted(set(old) | set(new))
            if k not in RUNTIME_FIELDS and k != "extra" and old.get(k) != new.get(k)]
