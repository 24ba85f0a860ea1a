"""Which device to run on, waiting for it, and its reduced-precision context."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["resolve_device", "synchronize", "autocast", "bf16_supported", "exact_fp32"]


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; ``"cuda"`` without one is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for but no GPU is visible; use device='cpu' or 'auto'")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'")
    return device


def synchronize(device: str | torch.device) -> None:
    """Wait until the device has finished its queued work (a no-op on the CPU)."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


def autocast(device: str | torch.device, dtype: str) -> Any:
    """``torch.autocast`` for ``dtype`` ``"bf16"``/``"fp16"`` on ``device``; a null context for ``"fp32"``."""
    if dtype == "fp32":
        return contextlib.nullcontext()
    if dtype not in ("bf16", "fp16"):
        raise ValueError(f"unknown dtype {dtype!r}; choose fp32, bf16 or fp16")
    device_type = "cuda" if str(device).startswith("cuda") else "cpu"
    return torch.autocast(device_type, dtype=torch.bfloat16 if dtype == "bf16" else torch.float16)


def bf16_supported(device: str | torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (fast): a CUDA GPU that supports it, or a CPU with
    AVX-512 BF16 or AMX. Elsewhere oneDNN emulates bf16 and it runs slower than fp32."""
    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: read the CPU's flags
        try:
            flags = open("/proc/cpuinfo").read()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags


@contextlib.contextmanager
def exact_fp32() -> Iterator[None]:
    """TF32 off inside: cuDNN convolutions and CUDA matmuls in true float32. PyTorch lets cuDNN use TF32
    by default (10 mantissa bits, ~1e-3 relative per convolution), so on a GPU since Ampere two orderings
    of the same float32 arithmetic can differ by percents at a deep network's output: equivalence checks
    run in here. Nothing changes on a CPU."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old
