"""The network half of ``fastfcn predict``: a checkpoint loaded once, in the runtime chosen for it, turning RGB
images into label maps (:class:`Predictor`). Reading the files and writing the PNGs around it is
:mod:`fastfcn.inference.predict`'s."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from .evaluate import PREDICT_BYTES
from .graphs import engine_for

__all__ = ["Predictor"]


class Predictor:
    """A model from a checkpoint, the inference settings it was trained with, and the way it is run.

    ``mode``: ``"whole"`` (one forward of the image resized to its long side ``base_size``; the default) or
    ``"slide"`` (the official sliding window, four forwards for a photo at the paper's sizes); see
    :mod:`fastfcn.inference.windows`. ``runtime``/``precision``/``compile``: how the forward runs
    (:func:`fastfcn.inference.fast_path.variant_for`): by default ONNX Runtime where it is installed, else
    our exact path (fp32, channels_last, BatchNorm folded). ``compile=None``: compile where this machine
    measured it to pay off for the run's forwards: those of ``image_sizes`` (height, width, or None for a size not
    known; read only where slide mode on the torch path leaves it to decide), one image by default
    (:func:`fastfcn.inference.fast_path.auto_compile`; the reason is in ``compile_reason``).
    ``onnx_path``: an exported graph of this checkpoint for ONNX Runtime/OpenVINO; by default it is exported once and kept in the cache folder.
    ``variant``: a fast-path variant that replaces the three (e.g. ``"fp32"``: plain eager, the reference).
    ``announce``: whether exporting the graph into the cache says so on stderr.
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto", multi_scale: bool = False,
                 base_size: int | None = None, crop_size: int | None = None,
                 max_bytes: int = PREDICT_BYTES, mode: str = "whole", runtime: str = "auto",
                 precision: str = "fp32", compile: bool | None = False, onnx_path: str | Path | None = None,
                 variant: str | None = None,
                 image_sizes: Iterable[tuple[int, int] | None] | None = None, announce: bool = True) -> None:
        from ..checkpoint import model_from_checkpoint
        from ..utils.device import resolve_device
        from .evaluate import MS_SCALES
        from .fast_path import compiled_where_it_pays, parse_variant, variant_for
        from .windows import MODES

        if mode not in MODES:
            raise ValueError(f"unknown inference mode {mode!r}; choose one of {', '.join(MODES)}")
        self.device = resolve_device(device)
        chosen = variant is None  # by runtime/precision/compile, not named
        if chosen:  # bad choices fail before the loading
            variant = variant_for(runtime, precision, self.device, bool(compile))
        self.model, ckpt = model_from_checkpoint(checkpoint)
        self.model.to(self.device)
        train_config = ckpt.get("train_config") or {}
        self.base_size = base_size or train_config.get("base_size") or 520
        self.crop_size = crop_size or train_config.get("crop_size") or 480
        self.mode = mode
        self.scales = MS_SCALES if multi_scale else (1.0,)
        self.flip = multi_scale
        self.compile_reason = None
        if chosen:  # compile=None: decided by this machine's measurement, for the run's forwards
            # every image's windows count (a folder of photos of mixed sizes), but the headers are read only
            # where the decision depends on them
            decides = (compile is None and mode == "slide"
                       and parse_variant(variant, self.device)["runtime"] == "torch")
            forwards = sum(map(self._forwards, image_sizes)) if decides and image_sizes is not None else 1
            variant, self.compile_reason = compiled_where_it_pays(
                variant, compile, runtime, precision, self.device, self.model.config, mode, max(1, forwards),
                self.crop_size)
        self.num_classes = int(self.model.config["num_classes"])
        self.classes = ckpt.get("classes")
        self.colours = ckpt.get("palette")  # the dataset's own class colours (classes.txt, Cityscapes), if any
        self.max_bytes = max_bytes
        self.engine = engine_for(self.model, checkpoint, variant, onnx_path, announce=announce)
        self.variant = self.engine.variant
        self.int8 = self.engine.quantization is not None

    def _forwards(self, size: tuple[int, int] | None) -> int:
        """The crops slide mode runs for an image of ``size`` (height, width); one where it is not known."""
        from .windows import slide_forwards

        return 1 if size is None else slide_forwards(*size, self.scales, self.flip, self.base_size, self.crop_size)

    @property
    def reduced(self) -> bool:
        """Whether the network runs in reduced precision (bf16/fp16, OpenVINO at its default, an int8 graph)."""
        return (self.int8 or any(t in self.variant.split("+") for t in ("bf16", "fp16"))
                or self.variant == "openvino")

    def describe(self) -> str:
        """One line: how the images are run (runtime, precision, mode, sizes)."""
        mode = (f"whole image at long side {self.base_size}" if self.mode == "whole" else
                f"sliding {self.crop_size} windows at long side {self.base_size}")
        scales = " x 6 scales + flip" if len(self.scales) > 1 else ""
        note = "; reduced precision: a few labels may differ from fp32" if self.reduced else ""
        graph = " (int8 graph)" if self.int8 else ""
        return f"{self.variant}{graph} on {self.device}, {mode}{scales}{note}"

    def labels(self, rgb: np.ndarray) -> np.ndarray:
        """``uint8 [H, W, 3]`` -> class ids ``[H, W]`` (uint8 up to 256 classes, else int32)."""
        from .evaluate import predict_labels

        labels = predict_labels(self.engine, self._image(rgb), self.scales, self.flip, self.base_size, self.crop_size,
                                max_bytes=self.max_bytes, mode=self.mode)
        return labels.cpu().numpy()

    def labels_later(self, rgb: np.ndarray) -> Callable[[], tuple[np.ndarray, str | None]] | None:
        """:meth:`labels` in two halves where predict can overlap them (whole mode, one scale, the CPU): the
        network runs now, and ``finish()`` gives the labels and a non-finite message, if any
        (:func:`fastfcn.inference.evaluate.predict_labels_later`); ``None`` elsewhere (call :meth:`labels`)."""
        from .evaluate import predict_labels_later

        if self.mode != "whole" or len(self.scales) > 1 or self.flip:
            return None
        finish = predict_labels_later(self.engine, self._image(rgb), self.num_classes, self.base_size,
                                      self.max_bytes)
        if finish is None:
            return None

        def labels() -> tuple[np.ndarray, str | None]:
            got, message = finish()
            return got.cpu().numpy(), message

        return labels

    def _image(self, rgb: np.ndarray) -> torch.Tensor:
        """``uint8 [H, W, 3]`` as the ``[3, H, W]`` tensor the inference functions take, on the device."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image [H, W, 3], got {rgb.dtype} {rgb.shape}")
        return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).to(self.device)
