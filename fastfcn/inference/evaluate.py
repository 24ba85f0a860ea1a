"""Inference and evaluation as the official FastFCN/EncNet test code.

For every scale ``s`` the image is resized (bilinear, ``align_corners=True``) so that its long side is
``ceil(base_size * s)`` (520 in the paper), keeping the aspect ratio. In the official ``slide`` mode,
if the resized image fits in one ``crop_size`` crop (480) it is padded to that crop and run once;
otherwise it is padded to at least one crop per side and covered by ``crop_size`` windows placed every
``2/3 * crop_size`` pixels (the last window of a row or column is padded where it runs past the image),
and the windows' class scores are averaged where they overlap. Padding uses the value of a black
pixel after normalisation. In ``whole`` mode the resized image is run once as it is
(:mod:`~fastfcn.inference.windows`). With ``flip`` each forward is also run mirrored left-right and the
two averaged.

Single-scale evaluation (the paper's Table 1) uses ``scales=(1.0,)`` without flip; multi-scale (Table 3)
uses ``MS_SCALES`` with flip. The class scores of each scale (the exponential of the logits, as the official
evaluator computes them, :mod:`~fastfcn.inference.windows`) are resized back to the original image size and
summed, and the prediction is their argmax. :func:`predict_probs` returns that sum normalised to one per
pixel (the same ranking of the classes).

Only labels leave :func:`predict_labels` (which :func:`evaluate` and ``fastfcn predict`` use): when the
full-resolution stack of class scores fits in ``max_bytes`` it is computed exactly as
:func:`predict_probs` does and the labels are its argmax; above that (a large photo, many classes) the
input is shrunk and the scores are resized back a band of rows at a time
(:mod:`~fastfcn.inference.resize`) and each band is reduced to its argmax, so memory does not grow with
classes x pixels; the scores then agree with the exact path's to float rounding.

A float input image whose values reach far outside the normalised range (0..255 pixel values passed as
float) gives an :class:`UnnormalisedImageWarning` that says how to pass it. A non-finite value (NaN, inf) in a
float input image or in the class scores (an input far outside the normalised range, logits above 88, or weights that
diverged) makes every label meaningless (class 0): it is reported as a :class:`NonFiniteWarning`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.transforms import normalize
from ..utils.timing import lap
from .argmax import class_argmax
from .batching import READ_AHEAD, read_ahead, runs_of_one_size
from .checks import (
    NonFiniteWarning,
    UnnormalisedImageWarning,
    check_image,
    check_model_device,
    check_probs,
    collect_nonfinite,
    model_dtype,
    nonfinite_message,
)
from .eval_halves import halves_apply, score_in_two_halves
from .metrics import SegmentationMetric, metric_for_dataset
from .resize import BilinearRows
from .windows import MIN_SIDE, MODES, image_scores, pad_to, scaled_size, segment_logits, sliding_windows

__all__ = ["MS_SCALES", "MODES", "evaluate", "predict_probs", "predict_probs_batch", "predict_labels",
           "predict_labels_later", "sliding_windows", "segment_logits", "NonFiniteWarning", "UnnormalisedImageWarning",
           "collect_nonfinite", "PREDICT_BYTES", "EVAL_BYTES", "LATER_BYTES", "INPUT_LAP", "NETWORK_LAP"]

MS_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
# full-resolution score stacks up to this size are computed as predict_probs does (exact labels)
PREDICT_BYTES = 256 * 2**20
EVAL_BYTES = 2 * 2**30  # evaluation: up to 3.5 M pixels at 150 classes stay on the exact path
BAND_BYTES = 32 * 2**20  # working memory of one band of rows on the banded path
# logits one image may hold between its network and the rest (predict_labels_later): 59 classes at 520 x 520
LATER_BYTES = 64 * 2**20
INPUT_LAP, NETWORK_LAP = "input: normalise, resize", "network"  # predict_labels_later's laps before its finish


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def _check_settings(scales: Sequence[float], base_size: int, crop_size: int, mode: str = "slide") -> None:
    if mode not in MODES:
        raise ValueError(f"unknown inference mode {mode!r}; choose one of {', '.join(MODES)}")
    if not len(scales) or any(not s > 0 for s in scales):
        raise ValueError(f"scales must be positive numbers, got {list(scales)}")
    if base_size < 1 or crop_size < 1:
        raise ValueError(f"base_size and crop_size must be positive, got {base_size} and {crop_size}")


def _network_input(model: nn.Module, image: Tensor) -> Tensor:
    """``[3, H, W]`` as the network takes it: a float image has been normalised already (by the dataset's
    EvalTransform), a uint8 one is normalised here."""
    return image if image.is_floating_point() else normalize(image).to(model_dtype(model))


def _summed_probs(model: nn.Module, x: Tensor, scales: Sequence[float], flip: bool, base_size: int,
                  crop_size: int, mode: str, image: Tensor) -> Tensor:
    """``[B, C, H, W]``: the class scores of every scale of ``x`` (``[B, 3, H, W]``, normalised), resized back
    to ``H x W`` and summed over the scales (``image``: one of the inputs as given, for the warnings)."""
    height, width = x.shape[-2:]
    total: Tensor | None = None
    for scale in scales:
        resized = F.interpolate(x, scaled_size(height, width, base_size, scale), mode="bilinear",
                                align_corners=True)
        probs = check_probs(image_scores(model, resized, crop_size, flip, mode), scale, image)
        probs = F.interpolate(probs, (height, width), mode="bilinear", align_corners=True)
        total = probs if total is None else total + probs
    assert total is not None
    return total


@torch.no_grad()
def predict_probs(model: nn.Module, image: Tensor, scales: Sequence[float] = (1.0,), flip: bool = False,
                  base_size: int = 520, crop_size: int = 480, mode: str = "slide") -> Tensor:
    """Class probabilities ``[C, H, W]`` of one image (``[3, H, W]``, uint8 or normalised float): the summed
    class scores normalised to one per pixel (see the module docstring).

    The model should be in eval mode and on the image's device. This holds ``C x H x W`` floats: for
    labels of large images use :func:`predict_labels`.
    """
    _check_settings(scales, base_size, crop_size, mode)
    image = check_image(model, image)
    return _normalised(_summed_probs(model, _network_input(model, image)[None], scales, flip, base_size, crop_size,
                                     mode, image)[0], 0)


def _normalised(scores: Tensor, dim: int) -> Tensor:
    return scores.div_(scores.sum(dim, keepdim=True))


@torch.no_grad()
def predict_probs_batch(model: nn.Module, images: Sequence[Tensor], scales: Sequence[float] = (1.0,),
                        flip: bool = False, base_size: int = 520, crop_size: int = 480, mode: str = "slide"
                        ) -> Tensor:
    """Class probabilities ``[B, C, H, W]`` of images of one size (each ``[3, H, W]``), run through the network
    together: :func:`predict_probs` of each, computed as one batch. The values agree with it to float rounding
    (a convolution may take another algorithm for another batch size); on a small network on a 2-core CPU, ten
    128 px images together took 0.55-0.65 of the time of ten one by one (2026-12-03)."""
    _check_settings(scales, base_size, crop_size, mode)
    if not len(images):
        raise ValueError("predict_probs_batch needs at least one image")
    checked = [check_image(model, image) for image in images]
    if len({tuple(image.shape) for image in checked}) > 1:
        raise ValueError(f"the images of one batch must share a size, got {sorted({tuple(i.shape) for i in checked})}")
    x = torch.stack([_network_input(model, image) for image in checked])
    return _normalised(_summed_probs(model, x, scales, flip, base_size, crop_size, mode, checked[0]), 1)


def _label_dtype(num_classes: int) -> torch.dtype:
    return torch.uint8 if num_classes <= 256 else torch.int32


def _argmax(probs: Tensor, background: int | None) -> tuple[Tensor, Tensor | None]:
    """The labels of ``[C, ...]`` class scores, and those without the class ``background`` (or None)."""
    dtype = _label_dtype(probs.shape[0])
    labels = class_argmax(probs, dtype)
    if background is None:
        return labels, None
    probs[background] = -math.inf
    return labels, class_argmax(probs, dtype)


def _shrink_input(model: nn.Module, image: Tensor, size: tuple[int, int]) -> Tensor:
    """``[1, 3, h, w]`` normalised input at ``size``, a band of rows at a time (never the full image in float)."""
    height, width = image.shape[-2:]
    resizer = BilinearRows((height, width), size, image.device)
    transform = None if image.is_floating_point() else normalize
    out = torch.empty(1, 3, *size, dtype=torch.float32, device=image.device)
    rows = max(1, BAND_BYTES // (3 * width * 4 * 8))
    for start in range(0, size[0], rows):
        stop = min(size[0], start + rows)
        out[0, :, start:stop] = resizer(image, start, stop, transform)
    return out.to(model_dtype(model))


def _banded_labels(lows: list[Tensor], size: tuple[int, int], background: int | None) -> tuple[Tensor, Tensor | None]:
    """Resize every scale's ``[C, h, w]`` class scores to ``size`` by bands of rows, sum, argmax."""
    height, width = size
    num_classes, device = lows[0].shape[0], lows[0].device
    resizers = [BilinearRows(tuple(p.shape[-2:]), size, device) for p in lows]
    labels = torch.empty(height, width, dtype=_label_dtype(num_classes), device=device)
    without = torch.empty_like(labels) if background is not None else None
    rows = max(1, BAND_BYTES // (num_classes * width * 4 * 8))
    for start in range(0, height, rows):
        stop = min(height, start + rows)
        band: Tensor | None = None
        for resizer, probs in zip(resizers, lows, strict=True):
            up = resizer(probs, start, stop)
            band = up if band is None else band + up
        assert band is not None
        got, got_without = _argmax(band, background)
        labels[start:stop] = got
        if without is not None and got_without is not None:
            without[start:stop] = got_without
    return labels, without


def _label_maps(model: nn.Module, image: Tensor, scales: Sequence[float], flip: bool, base_size: int,
                crop_size: int, background: int | None, max_bytes: int, mode: str = "slide"
                ) -> tuple[Tensor, Tensor | None]:
    _check_settings(scales, base_size, crop_size, mode)
    image = check_image(model, image)
    height, width = image.shape[-2:]
    x = None
    if 3 * height * width * 4 <= max_bytes:  # as predict_probs
        x = _network_input(model, image)[None]
    total: Tensor | None = None
    lows: list[Tensor] = []
    for scale in scales:
        size = scaled_size(height, width, base_size, scale)
        resized = (F.interpolate(x, size, mode="bilinear", align_corners=True) if x is not None
                   else _shrink_input(model, image, size))
        probs = check_probs(image_scores(model, resized, crop_size, flip, mode), scale, image)
        if probs.shape[1] * height * width * 4 <= max_bytes:  # as predict_probs
            probs = F.interpolate(probs, (height, width), mode="bilinear", align_corners=True)
            total = probs if total is None else total + probs
        else:
            lows.append(probs[0])
    del x
    if total is not None:
        return _argmax(total[0], background)
    return _banded_labels(lows, (height, width), background)


def _label_maps_batch(model: nn.Module, images: list[Tensor], scales: Sequence[float], flip: bool, base_size: int,
                      crop_size: int, background: int | None, num_classes: int, max_bytes: int, mode: str = "slide"
                      ) -> list[tuple[Tensor, Tensor | None]]:
    """:func:`_label_maps` of images of one size, run through the network together when the batch's input and
    scores fit in ``max_bytes`` (else one by one, as ever)."""
    height, width = images[0].shape[-2:]
    if len(images) == 1 or len(images) * max(3, num_classes) * height * width * 4 > max_bytes:
        return [_label_maps(model, image, scales, flip, base_size, crop_size, background, max_bytes, mode)
                for image in images]
    _check_settings(scales, base_size, crop_size, mode)
    checked = [check_image(model, image) for image in images]
    x = torch.stack([_network_input(model, image) for image in checked])
    total = _summed_probs(model, x, scales, flip, base_size, crop_size, mode, checked[0])
    del x
    return [_argmax(total[b], background) for b in range(len(images))]


@torch.no_grad()
def predict_labels(model: nn.Module, image: Tensor, scales: Sequence[float] = (1.0,), flip: bool = False,
                   base_size: int = 520, crop_size: int = 480, max_bytes: int = PREDICT_BYTES,
                   mode: str = "slide") -> Tensor:
    """Class ids ``[H, W]`` of one image (``[3, H, W]``, uint8 or normalised float): uint8 for up to 256
    classes, else int32.

    The argmax of the summed class scores (of ``predict_probs(...)``, which normalises them, but for a tie that
    the division makes) when the ``C x H x W`` float32 scores fit in ``max_bytes``; above that they are resized
    back and reduced a band of rows at a time (see the module docstring), so memory stays about ``H x W`` bytes
    plus the input, whatever the number of classes.
    """
    return _label_maps(model, image, scales, flip, base_size, crop_size, None, max_bytes, mode)[0]


@torch.no_grad()
def predict_labels_later(model: nn.Module, image: Tensor, num_classes: int, base_size: int = 520,
                         max_bytes: int = PREDICT_BYTES) -> Callable[[], tuple[Tensor, str | None]] | None:
    """:func:`predict_labels` in ``whole`` mode at one scale without flip, in two halves: the network runs now,
    and the returned ``finish()`` (to be called once, in any thread) computes the rest (exponential, resizing back,
    arg-max) and gives the labels with the :class:`NonFiniteWarning` message it would have raised (None when
    every value is finite): so ``fastfcn predict`` runs the next image's network while a writer thread
    finishes this one. The same operations in the same order: the labels equal :func:`predict_labels`'s.

    ``None`` (nothing run) where the two halves would hold too much: an image on another device than the CPU,
    or whose class scores, at the network's size or at full size, exceed :data:`LATER_BYTES` (or
    ``max_bytes``): the caller then runs :func:`predict_labels`. So a pending ``finish()`` holds at most
    :data:`LATER_BYTES` (59 classes at 512 x 512 images), and one running twice that. Its parts are named
    laps (:func:`~fastfcn.utils.timing.lap`; ``fastfcn.benchmark.predict_parts`` times them).
    """
    image = check_image(model, image)
    height, width = image.shape[-2:]
    h, w = scaled_size(height, width, base_size, 1.0)
    held = num_classes * max(h, MIN_SIDE) * max(w, MIN_SIDE) * 4
    full = max(3, num_classes) * height * width * 4
    if image.device.type != "cpu" or full > min(max_bytes, LATER_BYTES) or held > LATER_BYTES:
        return None
    with lap(INPUT_LAP):
        resized = F.interpolate(_network_input(model, image)[None], (h, w), mode="bilinear", align_corners=True)
    padded = h < MIN_SIDE or w < MIN_SIDE  # as image_scores in whole mode
    with lap(NETWORK_LAP):
        logits = segment_logits(model, pad_to(resized, max(h, MIN_SIDE), max(w, MIN_SIDE)) if padded else resized)
    logits = logits.float()
    del resized

    def finish() -> tuple[Tensor, str | None]:
        with torch.no_grad():
            with lap("exponential"):
                probs = torch.exp(logits, out=logits)  # in place, as forward_scores
            probs = probs[..., :h, :w] if padded else probs
            with lap("non-finite check"):
                message = nonfinite_message(probs, 1.0, image)
            with lap("resize back"):
                probs = F.interpolate(probs, (height, width), mode="bilinear", align_corners=True)
            with lap("arg-max"):
                return _argmax(probs[0], None)[0], message

    return finish


def _score_batch(model: nn.Module, batch: list[tuple[int, tuple[Tensor, Tensor]]], metric: SegmentationMetric,
                 non_finite: list[tuple[int, str]], device: str | torch.device, num_classes: int,
                 settings: tuple) -> None:
    """Labels of one batch of ``(i, (image, mask))`` items into ``metric``; the first non-finite warning of an
    image into ``non_finite`` (a batch that gave one runs again image by image, to name it). ``settings``:
    ``(scales, flip, base_size, crop_size, background, max_bytes, mode)``, as :func:`_label_maps` takes them."""
    images = [image.to(device) for _, (image, _) in batch]
    with collect_nonfinite() as found, torch.no_grad():
        maps = _label_maps_batch(model, images, *settings[:5], num_classes, *settings[5:])
    if found and len(batch) > 1:
        maps = []
        for (i, _), image in zip(batch, images, strict=True):
            with collect_nonfinite() as one, torch.no_grad():
                maps.append(_label_maps(model, image, *settings))
            if one:
                non_finite.append((i, one[0]))
    elif found:
        non_finite.append((batch[0][0], found[0]))
    for (_, (_, mask)), (labels, without) in zip(batch, maps, strict=True):
        metric.update_labels(labels, mask.to(device), without)


def _score_all(model: nn.Module, batches: Iterator[list[tuple[int, Any]]], metric: SegmentationMetric,
               non_finite: list[tuple[int, str]], device: str | torch.device, num_classes: int, settings: tuple,
               batch_size: int) -> None:
    """Every batch into ``metric``: in two halves where they apply (:mod:`~fastfcn.inference.eval_halves`),
    else batch by batch on this thread."""
    scales, flip, base_size, _, background, max_bytes, mode = settings
    if halves_apply(scales, flip, mode, batch_size, background, device):
        score_in_two_halves(batches, lambda image: predict_labels_later(model, image, num_classes, base_size, max_bytes),
                            lambda batch: _score_batch(model, batch, metric, non_finite, device, num_classes, settings),
                            metric, non_finite, device)
        return
    for batch in batches:
        _score_batch(model, batch, metric, non_finite, device, num_classes, settings)


def evaluate(model: nn.Module, dataset: Any, scales: Sequence[float] = (1.0,), flip: bool = False,
             base_size: int = 520, crop_size: int = 480, device: str | torch.device = "cpu",
             limit: int | None = None, progress: bool = True, max_bytes: int = EVAL_BYTES,
             mode: str = "slide", batch_size: int = 1) -> dict[str, Any]:
    """pixAcc / mIoU / per-class IoU of ``model`` on ``dataset`` (items ``(image, mask)``, any sizes).

    Under ``torch.distributed`` each process takes every ``world_size``-th image and the confusion
    matrices are summed, so every process returns the same metrics. For Pascal Context 60 the result
    also holds the 59-class protocol under ``"without_background"`` (see :mod:`fastfcn.inference.metrics`).
    The metrics need labels only (:func:`predict_labels`; ``max_bytes`` as there). Images whose input or
    class scores hold NaN/inf are counted in one :class:`NonFiniteWarning` at the end that names
    the first of them. ``mode``: ``"slide"`` (the official protocol) or ``"whole"`` (one forward per scale,
    see :mod:`~fastfcn.inference.windows`). The next items are read from ``dataset`` in another thread
    (one) while the network runs; in whole mode at one scale on the CPU another finishes each image (exponential,
    resizing back, arg-max, counting) beside the next one's network (:mod:`~fastfcn.inference.eval_halves`). ``batch_size`` > 1 runs up to that many consecutive images of one size through
    the network together (:func:`predict_probs_batch`: faster for small images, equal to one by one up to float
    rounding); images of another size close a batch.
    """
    _check_settings(scales, base_size, crop_size, mode)
    check_model_device(model, device)
    import torch.distributed as dist

    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)
    if limit is not None and limit < 1:
        raise ValueError(f"limit (the number of images to evaluate) must be at least 1, got {limit}")
    n = len(dataset) if limit is None else min(limit, len(dataset))
    if n == 0:  # metrics of no pixels would be 0/0 = NaN: say so instead
        raise ValueError("the dataset has no images: nothing to evaluate")
    num_classes = _unwrap(model).config["num_classes"] if hasattr(_unwrap(model), "config") else dataset.num_classes
    metric = metric_for_dataset(num_classes, dataset, device)
    was_training = model.training
    model.eval()
    indices = range(rank, n, world)
    reading = read_ahead(dataset, indices, max(READ_AHEAD, batch_size))
    items: Iterator[tuple[int, Any]] = reading
    if progress and rank == 0:
        from tqdm.auto import tqdm

        items = tqdm(items, total=len(indices), desc="eval", unit="img", leave=False)
    batches = runs_of_one_size(items, batch_size, lambda item: item[1][0].shape)  # a bad batch_size stops here
    start = time.perf_counter()
    non_finite: list[tuple[int, str]] = []
    settings = (scales, flip, base_size, crop_size, metric.background, max_bytes, mode)
    try:
        _score_all(model, batches, metric, non_finite, device, num_classes, settings, batch_size)
    finally:
        reading.close()  # the reader thread stops now, also when the loop was left early
        model.train(was_training)
    if non_finite:
        first, message = non_finite[0]
        warnings.warn(f"{len(non_finite)} of {len(range(rank, n, world))} evaluated images gave non-finite values "
                      f"(first: image {first}: {message}); the metrics are not meaningful", NonFiniteWarning,
                      stacklevel=2)
    metric.all_reduce()
    out = metric.compute()
    out.update({"images": n, "mode": mode, "scales": list(scales), "flip": bool(flip), "base_size": base_size,
                "crop_size": crop_size, "time_s": time.perf_counter() - start})
    return out
