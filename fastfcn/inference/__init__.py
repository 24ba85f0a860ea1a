"""Using a trained model: evaluation as the official test code, metrics, prediction on image files,
and the fast inference path.

* :mod:`~fastfcn.inference.evaluate` -- single/multi-scale, flip, sliding window; :func:`evaluate`;
  :func:`predict_labels` (label maps in bounded memory, with :mod:`~fastfcn.inference.resize`)
* :mod:`~fastfcn.inference.metrics` -- pixAcc, IoU, mIoU; Pascal Context's 59/60-class protocols
* :mod:`~fastfcn.inference.predict` -- mask and overlay PNGs for files and folders
* :mod:`~fastfcn.inference.fold` -- BatchNorm folded into the convolutions
* :mod:`~fastfcn.inference.windows` -- one image's class scores: the official sliding window, or one forward
* :mod:`~fastfcn.inference.fast_path` -- :func:`optimize`: a model in a faster variant or another runtime
* :mod:`~fastfcn.inference.runtimes` -- the ONNX graph, ONNX Runtime and OpenVINO (the ``deploy`` extra)
* :mod:`~fastfcn.inference.export` -- ``fastfcn export``: the graph checked before it is written
* :mod:`~fastfcn.inference.graphs` -- which graph ``predict``/``eval`` run: ``--onnx`` checked, or the cache's
"""

from .evaluate import (
    MS_SCALES,
    NonFiniteWarning,
    evaluate,
    predict_labels,
    predict_probs,
    segment_logits,
    sliding_windows,
)
from .fast_path import optimize
from .fold import fold_batchnorm
from .metrics import SegmentationMetric
from .predict import Predictor, predict_files

__all__ = ["MS_SCALES", "NonFiniteWarning", "Predictor", "SegmentationMetric", "evaluate", "fold_batchnorm",
           "optimize", "predict_files", "predict_labels", "predict_probs", "segment_logits", "sliding_windows"]
