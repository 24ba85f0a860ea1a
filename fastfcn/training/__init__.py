"""Training FastFCN with the official recipe: config, loop, losses, schedule, distributed, RNG.

* :mod:`~fastfcn.training.config` -- :class:`TrainConfig` and the paper's per-dataset defaults
* :mod:`~fastfcn.training.loop` -- :func:`train` (SGD, poly, AMP, DDP, exact resume, NaN guard)
* :mod:`~fastfcn.training.losses` -- CE + aux + SE-loss
* :mod:`~fastfcn.training.schedule` -- the 10x head learning rate and the poly schedule
* :mod:`~fastfcn.training.distributed` -- ``torchrun`` set-up
* :mod:`~fastfcn.training.rng` -- seeds and RNG states for bit-identical resumes
* :mod:`~fastfcn.training.runlog` -- log.jsonl / steps.jsonl (derivable from the checkpoint, torn lines)
* :mod:`~fastfcn.training.lock` -- one run per folder (``train.lock``), stale temporary files
* :mod:`~fastfcn.training.resume` -- what a resume checks (complete checkpoint, no newer run replaced)
"""

from .config import DATASET_DEFAULTS, ConfigError, TrainConfig
from .lock import RunLockedError
from .loop import NonFiniteLossError, train
from .losses import SegmentationLoss, class_presence, default_aux_weight
from .schedule import param_groups, poly_lr, set_lr

__all__ = ["DATASET_DEFAULTS", "ConfigError", "NonFiniteLossError", "RunLockedError", "SegmentationLoss",
           "TrainConfig", "class_presence", "default_aux_weight", "param_groups", "poly_lr", "set_lr", "train"]
