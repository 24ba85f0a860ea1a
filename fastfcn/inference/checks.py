"""What goes into the network and what comes out, checked: a float image far outside the normalised range (0..255
passed as float) and non-finite values in the input or in the class scores give warnings that say what to do.

:func:`collect_nonfinite` collects the :class:`NonFiniteWarning` s raised inside a block, so that evaluation and
``fastfcn predict`` can name the image that gave them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

__all__ = ["NORMALISED_BOUND", "UnnormalisedImageWarning", "NonFiniteWarning", "collect_nonfinite", "model_dtype",
           "check_image", "check_model_device", "check_probs", "nonfinite_message"]

# |(pixel - MEAN) / STD| of a normalised image stays below 2.7 and randn test inputs rarely pass 6; 0..255
# pixel values passed as float reach 10 unless the whole image is nearly black
NORMALISED_BOUND = 10.0


class UnnormalisedImageWarning(UserWarning):
    """A float image whose values lie far outside the normalised range: 0..255 pixels passed as float."""


class NonFiniteWarning(RuntimeWarning):
    """The input image or the class scores hold NaN or infinite values: the labels are meaningless."""


@contextmanager
def collect_nonfinite() -> Iterator[list[str]]:
    """Collect the messages of the :class:`NonFiniteWarning` s raised inside (available after the block);
    other warnings are passed on."""
    messages: list[str] = []
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as recorded:
            warnings.simplefilter("always")
            try:
                yield messages
            finally:
                caught = list(recorded or [])
    finally:
        for w in caught:
            if issubclass(w.category, NonFiniteWarning):
                messages.append(str(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def model_dtype(model: nn.Module) -> torch.dtype:
    p = next(iter(model.parameters()), None)
    return p.dtype if p is not None and p.is_floating_point() else torch.float32


def check_image(model: nn.Module, image: Tensor) -> Tensor:
    """Validate ``[3, H, W]`` uint8 or float; a float image is put in the model's dtype (float16/float64
    inputs would otherwise meet float32 weights) and checked for NaN/inf."""
    if not isinstance(image, Tensor):
        raise ValueError(f"expected the image as a torch.Tensor [3, H, W], got {type(image).__name__}")
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"expected one RGB image [3, H, W], got {tuple(image.shape)}")
    if image.shape[1] < 1 or image.shape[2] < 1:
        raise ValueError(f"the image is empty: {tuple(image.shape)}")
    if image.dtype == torch.uint8:
        return image
    if not image.is_floating_point():
        raise ValueError(f"expected a uint8 image (0..255) or a float image normalised with MEAN/STD, got dtype "
                         f"{image.dtype}; for 0..255 pixel values pass image.to(torch.uint8)")
    bad = int((~torch.isfinite(image)).sum())
    if bad:
        warnings.warn(f"the input image holds {bad} non-finite value(s) (NaN/inf) of {image.numel()}; the network "
                      "spreads them over the whole image, so its labels are meaningless: fix or replace those pixels",
                      NonFiniteWarning, stacklevel=3)
    elif (peak := float(image.abs().amax())) > NORMALISED_BOUND:
        warnings.warn(f"the float image's values reach {peak:.4g}, far outside the normalised range (about "
                      "-2.1..2.7): 0..255 pixel values passed as float give meaningless labels; pass "
                      "image.to(torch.uint8) (normalised for you) or fastfcn.data.transforms.normalize(image)",
                      UnnormalisedImageWarning, stacklevel=3)
    dtype = model_dtype(model)
    return image if image.dtype == dtype else image.to(dtype)


def nonfinite_message(probs: Tensor, scale: float, image: Tensor) -> str | None:
    """What :func:`check_probs` warns about ``probs`` (None when every value is finite): for a caller that
    cannot catch warnings (another thread: ``warnings.catch_warnings`` is process-wide)."""
    # a sum is finite when every value is (20x faster than isfinite().all()); scores (exponentials of logits)
    # so large that only their sum overflows are counted below
    if bool(torch.isfinite(probs.sum())):
        return None
    bad = int((~torch.isfinite(probs)).sum())
    if not bad:
        return None
    cause = ("the input is far outside the normalised range (a float image must be normalised with "
             "MEAN/STD, about -2.1..2.7) or the model's weights are not finite" if image.is_floating_point()
             else "the model's weights are not finite (a diverged training run?)")
    return (f"the class scores hold {bad} non-finite value(s) (NaN/inf) at scale {scale}; those pixels' labels "
            f"are meaningless (NaN gives class 0). Likely cause: {cause}, or logits above 88, whose exponential "
            "(the official evaluator's class score) overflows float32")


def check_probs(probs: Tensor, scale: float, image: Tensor) -> Tensor:
    message = nonfinite_message(probs, scale, image)
    if message is not None:
        warnings.warn(message, NonFiniteWarning, stacklevel=3)
    return probs


def check_model_device(model: nn.Module, device: str | torch.device) -> None:
    """The images go to ``device``; a model elsewhere would fail deep inside a convolution."""
    inner = model.module if hasattr(model, "module") else model  # DistributedDataParallel's wrapper
    parameters = getattr(inner, "parameters", None)  # a runtime's engine may hold no torch weights
    param = next(parameters(), None) if callable(parameters) else None
    if param is not None and param.device.type != torch.device(device).type:
        raise ValueError(f"the model is on {param.device.type} but device={str(device)!r}: "
                         f"move it first (model.to({str(device)!r})) or pass device={param.device.type!r}")
