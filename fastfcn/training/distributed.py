"""Joining a ``torchrun`` job: one process per GPU (NCCL), or per CPU slot (gloo)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistContext", "setup_distributed"]


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def all_gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj`` (a one-element list without a process group)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.initialized_here and dist.is_initialized():
            dist.destroy_process_group()


def setup_distributed(device: str = "auto") -> tuple[DistContext, str]:
    """Join the process group when launched by torchrun (``RANK``/``WORLD_SIZE``); return the device to use.

    With GPUs (and ``device`` not ``"cpu"``): NCCL, process ``LOCAL_RANK`` on ``cuda:LOCAL_RANK``. Without:
    gloo on the CPU. A single process (no torchrun, or ``WORLD_SIZE=1``) joins nothing.
    """
    from ..utils.device import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        return DistContext(), resolve_device(device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    else:
        device = "cpu"
    initialized_here = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
        initialized_here = True
    return DistContext(rank, world, local_rank, initialized_here), device
