"""What one training step costs, run each way a CPU offers, and which exact way is fastest on this machine.

A *path* is how the step runs: ``fp32`` (NCHW float32, PyTorch's default), ``fp32+channels_last`` (NHWC
activations: the same arithmetic in another memory order, so the same result up to float rounding) and
``bf16+channels_last`` (bf16 autocast: *not* exact, and timed only where the CPU computes bf16 natively;
elsewhere oneDNN emulates it, many times slower than float32). Which exact layout wins depends on the CPU
(AVX2 or AVX-512), on the head and on the dilation, so :func:`fastest_exact_layout` measures it rather than
assume it: a few steps of each, interleaved, on a fixed random batch of the run's size.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..utils.device import bf16_supported
from .config import TrainConfig

__all__ = ["TRAINING_PATHS", "EXACT_PATHS", "step_function", "time_paths", "fastest_exact_layout"]

# path -> (autocast dtype or None, channels_last)
TRAINING_PATHS: dict[str, tuple[torch.dtype | None, bool]] = {
    "fp32": (None, False),
    "fp32+channels_last": (None, True),
    "bf16+channels_last": (torch.bfloat16, True),
}
EXACT_PATHS = ("fp32", "fp32+channels_last")


def step_function(config: TrainConfig, num_classes: int, path: str, device: str = "cpu") -> Callable[[], float]:
    """A function that runs one training step of ``config``'s network (loss, backward, SGD update) on a fixed
    random batch of ``config``'s size, run the ``path`` way, and returns its loss."""
    from ..models import build_model
    from .losses import SegmentationLoss
    from .schedule import param_groups

    if path not in TRAINING_PATHS:
        raise ValueError(f"unknown training path {path!r}; choose one of {', '.join(TRAINING_PATHS)}")
    dtype, channels_last = TRAINING_PATHS[path]
    cfg = config.resolved(num_classes=num_classes)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(cfg.head, backbone=cfg.backbone, upsampling=cfg.upsampling, num_classes=num_classes,
                        aux_loss=cfg.aux_weight > 0, se_loss=cfg.head == "encnet" and cfg.se_weight > 0,
                        jpu_width=cfg.jpu_width).to(device, memory_format=fmt).train()
    criterion = SegmentationLoss(num_classes, aux_weight=cfg.aux_weight, se_weight=cfg.se_weight)
    optimizer = torch.optim.SGD(param_groups(model, cfg.lr, cfg.head_lr_mult), lr=cfg.lr, momentum=cfg.momentum)
    gen = torch.Generator().manual_seed(cfg.seed)
    side = cfg.crop_size
    images = torch.randn(cfg.batch_size, 3, side, side, generator=gen).to(device, memory_format=fmt)
    masks = torch.randint(num_classes, (cfg.batch_size, side, side), generator=gen).to(device)
    device_type = torch.device(device).type

    def step() -> float:
        with torch.autocast(device_type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            outputs = model(images)
        loss, _ = criterion({k: v.float() for k, v in outputs.items()}, masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def time_paths(configs: Sequence[TrainConfig], num_classes: int, paths: Sequence[str] = EXACT_PATHS, *,
               runs: int = 3, warmup: int = 1, device: str = "cpu") -> dict[tuple[int, str], float]:
    """Median seconds of one training step of every configuration run every way, ``{(config index, path): s}``.

    All steps are interleaved (round robin over configurations and paths), so that a change of the machine's
    speed during the measurement touches every cell alike. Paths this device cannot run natively (bf16 on a CPU
    that emulates it) are left out of the result.
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f"need runs >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    usable = [p for p in paths if TRAINING_PATHS[p][0] is None or bf16_supported(device)]
    steps = {(i, p): step_function(c, num_classes, p, device) for i, c in enumerate(configs) for p in usable}
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[tuple[int, str], list[float]] = {k: [] for k in steps}
    for _ in range(runs):
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def fastest_exact_layout(config: TrainConfig, num_classes: int, *, runs: int = 2, warmup: int = 1,
                         device: str = "cpu") -> dict[str, Any]:
    """Whether ``config`` trains faster in channels_last than in PyTorch's default layout, measured here.

    Returns ``{"channels_last": bool, "seconds": {path: median s}}``; the layouts compute the same step up to
    float rounding, so the choice changes the time and not what is learned.
    """
    seconds = time_paths([config], num_classes, EXACT_PATHS, runs=runs, warmup=warmup, device=device)
    by_path = {p: s for (_, p), s in seconds.items()}
    return {"channels_last": by_path["fp32+channels_last"] < by_path["fp32"], "seconds": by_path}
