"""Evaluation in two halves: each image's network runs while a worker thread finishes the one before.

In ``whole`` mode at one scale without flip on the CPU (one image per batch, no background class to leave out),
:func:`~fastfcn.inference.evaluate.evaluate` splits every image as ``fastfcn predict`` does
(:func:`~fastfcn.inference.evaluate.predict_labels_later`): the network runs on the calling thread, and the
rest -- the exponential, resizing the class scores back to the image, the arg-max and the confusion matrix -- in one
worker thread while the next image's network runs. The same operations on the same values: the confusion
matrix is the one of the plain loop to the count. At most one image waits to be finished (its logits,
:data:`~fastfcn.inference.evaluate.LATER_BYTES` at most); an image too large for that is scored on the
calling thread, after the one before it. Non-finite messages are recorded in image order.

Measured on a 2-core AVX2 EPYC (EncNet+JPU R50s, 59 classes, ONNX Runtime, nine 512 x 512 scenes held in memory,
one more image, six alternating pairs, each a fresh session, 2026-12-05): 1.04-1.17 times one forward, mean 1.08, against
1.04-1.19, mean 1.13, for the plain loop; lower in four pairs of six. Single forwards of one session spread by 10 %
there, so read it as "a few per cent"; the counts are the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch
from torch import Tensor

from .checks import collect_nonfinite
from .metrics import SegmentationMetric

__all__ = ["halves_apply", "score_in_two_halves"]

# the network's half of one image: it returns the rest to run (labels and a non-finite message, or None), or None
# when the image is too large to be held between the two (then ``score_plain`` scores it whole)
StartFn = Callable[[Tensor], "Callable[[], tuple[Tensor, str | None]] | None"]


def halves_apply(scales: Any, flip: bool, mode: str, batch_size: int, background: int | None,
                 device: str | torch.device) -> bool:
    """Whether :func:`score_in_two_halves` can score this evaluation."""
    return (mode == "whole" and tuple(scales) == (1.0,) and not flip and batch_size == 1 and background is None
            and torch.device(device).type == "cpu")


def _finish(finish: Callable[[], tuple[Tensor, str | None]], index: int, mask: Tensor, found: list[str],
            metric: SegmentationMetric, non_finite: list[tuple[int, str]]) -> None:
    labels, message = finish()
    if found or message:  # the input's warning first, as the plain loop would have caught it first
        non_finite.append((index, found[0] if found else message))
    metric.update_labels(labels, mask, None)


def score_in_two_halves(batches: Iterable[list[tuple[int, Any]]], start: StartFn,
                        score_plain: Callable[[list[tuple[int, Any]]], None], metric: SegmentationMetric,
                        non_finite: list[tuple[int, str]], device: str | torch.device) -> None:
    """Every ``(i, (image, mask))`` of ``batches`` (one each) into ``metric`` and ``non_finite``: ``start(image)``
    on this thread, the ``finish()`` it returns in the worker while the next image starts; an image ``start``
    declines is scored by ``score_plain(batch)`` here, after the one before it is counted."""
    with ThreadPoolExecutor(1, thread_name_prefix="fastfcn-eval-finish") as pool:
        pending: Future | None = None
        for batch in batches:
            ((index, (image, mask)),) = batch
            with collect_nonfinite() as found:
                finish = start(image.to(device))
            if pending is not None:
                pending.result()  # the image before is counted (or its error raised) before this one goes on
                pending = None
            if finish is None:
                score_plain(batch)
                continue
            pending = pool.submit(_finish, finish, index, mask.to(device), found, metric, non_finite)
        if pending is not None:
            pending.result()
