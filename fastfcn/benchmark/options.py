"""How the benchmark measures: device, precision, layout, sizes, repetitions."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..utils.device import resolve_device

__all__ = ["DTYPES", "MODES", "BenchOptions"]

DTYPES = ("fp32", "bf16", "fp16")


MODES = ("inference", "train")


@dataclass
class BenchOptions:
    """How to measure. ``validated()`` resolves the device and rejects inconsistent settings."""

    device: str = "cpu"              # cpu | cuda | cuda:N | auto
    dtype: str = "fp32"              # fp32 | bf16 (autocast) | fp16 (autocast, CUDA only)
    channels_last: bool = False
    compile: bool = False            # torch.compile (Inductor); the first call (compilation) is a warm-up call
    batch: int = 1                   # inference batch
    train_batch: int = 2             # training-step batch
    size: int = 512                  # square input side
    runs: int = 5
    warmup: int = 2
    aux: bool = True                 # auxiliary FCN head (computed in the official models' forward)
    num_classes: int = 59
    jpu_width: int = 512
    official_fps: bool = False       # also time without synchronising (the official FPS method)
    threads: int | None = None       # torch.set_num_threads; None keeps PyTorch's default
    isolate: bool = True             # each measurement in a fresh process (CPU peak memory needs it)
    cudnn_benchmark: bool = False
    seed: int = 0

    def validated(self) -> BenchOptions:
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; choose from {', '.join(DTYPES)}")
        device = resolve_device(self.device)
        if device == "cpu" and self.dtype == "fp16":
            raise ValueError("fp16 autocast is for CUDA devices; on the CPU use dtype='bf16' "
                             "(AVX-512 BF16) or 'fp32'")
        if device.startswith("cuda") and self.dtype == "bf16" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"this GPU ({torch.cuda.get_device_name(device)}) does not support bf16; use fp16")
        for name in ("batch", "train_batch", "runs", "num_classes", "jpu_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.train_batch < 2:
            raise ValueError("train_batch must be at least 2: in training mode BatchNorm needs more than one "
                             "value per channel, and the pooled branches (PSP, ASPP image pooling) have one per image")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be a non-negative integer, got {self.warmup!r}")
        if not isinstance(self.size, int) or self.size < 32:
            raise ValueError(f"size must be an integer >= 32 (the plain backbone divides it by 32), got {self.size!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {self.threads!r}")
        return replace(self, device=device)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")
