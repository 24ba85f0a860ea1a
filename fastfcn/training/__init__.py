"""Training FastFCN with the official recipe: config, loop, losses, schedule, distributed, RNG.

* :mod:`~fastfcn.training.config` -- :class:`TrainConfig` and the paper's per-dataset defaults
* :mod:`~fastfcn.training.loop` -- :func:`train` (SGD, poly, AMP, DDP, exact resume, NaN guard)
* :mod:`~fastfcn.training.losses` -- CE + aux + SE-loss
* :mod:`~fastfcn.training.schedule` -- the 10x head learning rate and the poly schedule
* :mod:`~fastfcn.training.distributed` -- ``torchrun`` set-up
* :mod:`~fastfcn.training.rng` -- seeds and RNG states for bit-identical resumes
"""

from .config import DATASET_DEFAULTS, TrainConfig
from .loop import NonFiniteLossError, train
from .losses import SegmentationLoss, class_presence, default_aux_weight
from .schedule import param_groups, poly_lr, set_lr

__all__ = ["DATASET_DEFAULTS", "NonFiniteLossError", "SegmentationLoss", "TrainConfig", "class_presence",
           "default_aux_weight", "param_groups", "poly_lr", "set_lr", "train"]
