"""Datasets and transforms for training and evaluating FastFCN.

* :func:`build_dataset` -- ``"procedural"`` (offline default), ``"pcontext"`` (59), ``"pcontext60"`` (60),
  ``"ade20k"`` (150), ``"cityscapes"`` (19), ``"folder"`` (your own data, :mod:`fastfcn.data.folder`). Each
  item is ``(uint8 image [3, H, W], int64 mask [H, W])``, ignored pixels :data:`IGNORE_INDEX`.
* :func:`fastfcn.data.check.check_dataset` -- every pair of an on-disk dataset checked before a run.
* :class:`TrainTransform` / :class:`EvalTransform` -- the paper's augmentation and the evaluation transform
  (both normalise with ImageNet MEAN/STD); :func:`denormalize` undoes it for pictures.
* :func:`palette` / :func:`colorize` -- colours for label maps.
"""

from .ade20k import ADE20K, ADE20K_CLASSES
from .base import IGNORE_INDEX, DatasetNotFoundError, SegmentationDataset
from .cityscapes import CITYSCAPES_CLASSES, Cityscapes
from .folder import FolderDataset
from .palette import colorize, palette
from .pcontext import PascalContext
from .pcontext_classes import PCONTEXT60_CLASSES, PCONTEXT_CLASSES
from .procedural import ProceduralScenes
from .registry import DATASETS, build_dataset
from .scene import CLASSES as PROCEDURAL_CLASSES
from .transforms import EvalTransform, TrainTransform, denormalize, normalize

__all__ = [
    "ADE20K", "ADE20K_CLASSES", "CITYSCAPES_CLASSES", "Cityscapes", "DATASETS", "FolderDataset", "IGNORE_INDEX",
    "PCONTEXT60_CLASSES", "PCONTEXT_CLASSES",
    "PROCEDURAL_CLASSES", "DatasetNotFoundError", "EvalTransform", "PascalContext", "ProceduralScenes",
    "SegmentationDataset", "TrainTransform", "build_dataset", "colorize", "denormalize", "normalize", "palette",
]
