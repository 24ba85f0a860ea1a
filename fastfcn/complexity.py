"""Parameters, FLOPs and activation memory of a model, counted by PyTorch itself.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (convolutions, matrix products and
the like; one multiply-add = 2 FLOPs). ``macs = flops / 2`` is the unit most papers and the
official FastFCN numbers use (GMACs). Normalisation, activations and interpolation are not counted,
as in the usual counters.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["Complexity", "complexity", "count_parameters"]


@dataclass
class Complexity:
    params: int
    flops: int
    activation_bytes: int
    saved_for_backward_bytes: int | None = None
    flops_by_module: dict[str, int] = field(default_factory=dict)

    @property
    def macs(self) -> float:
        return self.flops / 2

    @property
    def gmacs(self) -> float:
        return self.flops / 2e9

    def as_dict(self) -> dict:
        return {"params": self.params, "flops": self.flops, "gmacs": self.gmacs,
                "activation_bytes": self.activation_bytes,
                "saved_for_backward_bytes": self.saved_for_backward_bytes}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@contextmanager
def _leaf_output_bytes(model: nn.Module) -> Iterator[list[int]]:
    """Sum the bytes of every leaf module's outputs in the forwards run inside the block (into ``[total]``):
    counted in the same forward as the FLOPs, since a forward on the meta device is not free (~1 ms per op)."""
    total = [0]

    def hook(_mod, _inp, out):
        for t in out.values() if isinstance(out, dict) else (out if isinstance(out, (list, tuple)) else [out]):
            if isinstance(t, torch.Tensor):
                total[0] += t.numel() * t.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        yield total
    finally:
        for h in handles:
            h.remove()


def saved_for_backward_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd keeps for backward in one training-mode forward of ``x``
    (works on the ``meta`` device too: the count depends on shapes only)."""
    seen: dict[tuple, int] = {}

    def pack(t: torch.Tensor):
        try:
            storage = t.untyped_storage()
            # meta storages have no address: the storage object itself tells two of them apart
            key = (storage._cdata if t.is_meta else storage.data_ptr(), t.device)
            seen[key] = max(seen.get(key, 0), storage.nbytes())
        except RuntimeError:  # tensors without storage (e.g. some views under functionalization)
            pass
        return t

    was_training = model.training
    model.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(x)
        del out
    finally:
        model.train(was_training)
    return sum(seen.values())


def complexity(model: nn.Module, input_size: int | tuple[int, int] = 512, batch_size: int = 1,
               training_memory: bool = False, by_module_depth: int = 3) -> Complexity:
    """Count parameters, FLOPs and activation memory of ``model`` for one input size.

    The counting forward runs on the ``meta`` device (a copy of the model whose tensors have shapes and no
    data): the counts depend on shapes only, so they come for free instead of costing a real forward pass.

    Args:
        input_size: ``H`` or ``(H, W)`` of the RGB input.
        training_memory: also count the bytes autograd saves for backward in train mode
            (what limits the batch size in training).
        by_module_depth: FLOPs are also reported per module down to this depth
            (``backbone.layer3``, ``upsample``, ``head`` ...).
    """
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    if h < 1 or w < 1 or batch_size < 1:
        raise ValueError(f"input size and batch size must be positive, got {(batch_size, h, w)}")
    param = next(model.parameters())
    shapes = model if param.is_meta else copy.deepcopy(model).to("meta")
    x = torch.empty(batch_size, 3, h, w, device="meta", dtype=param.dtype)
    shapes.eval()
    counter = FlopCounterMode(display=False, depth=by_module_depth)
    with _leaf_output_bytes(shapes) as activation, counter, torch.no_grad():
        shapes(x)
    by_module = {}
    for name, ops in counter.get_flop_counts().items():
        short = name.split(".", 1)[1] if "." in name else ""
        by_module[short] = int(sum(ops.values()))
    saved = saved_for_backward_bytes(shapes, x) if training_memory else None
    return Complexity(count_parameters(model), int(counter.get_total_flops()), activation[0], saved, by_module)
