"""Mixed precision for training: fp16 autocast on a GPU, bf16 autocast on a CPU that computes bf16 natively."""

from __future__ import annotations

import torch

from ..utils.device import bf16_supported

__all__ = ["mixed_precision"]


def mixed_precision(device: str, amp: bool | None, amp_dtype: str | None) -> tuple[torch.dtype | None, str | None]:
    """The autocast dtype of a run (``None``: float32) and, when a request cannot be honoured, why.

    ``amp=None`` means on with CUDA, off on the CPU. On the CPU, bf16 is used only where it is native:
    elsewhere oneDNN emulates it and a step takes many times longer than in float32.
    """
    cuda = device.startswith("cuda")
    if not (cuda if amp is None else amp):
        return None, None
    name = amp_dtype or ("fp16" if cuda else "bf16")
    if not cuda and name == "fp16":
        return None, "fp16 autocast needs a GPU; training in float32 (bf16 is the CPU's mixed precision)"
    if name == "bf16" and not bf16_supported(device):
        return None, (f"this {'GPU' if cuda else 'CPU'} has no native bfloat16 (it would be emulated, slower than "
                      f"float32); training in float32")
    return (torch.bfloat16 if name == "bf16" else torch.float16), None
