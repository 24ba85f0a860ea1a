"""Per-stage cost of a ResNet trunk: FLOPs, activation memory and latency of stem, layer1..layer4.

The cost of dilation is not spread evenly over the network: a dilated (output stride 8) trunk runs
the stem, layer1 and layer2 exactly like the plain (output stride 32) one, and pays only in layer3
and layer4, whose feature maps are 4x and 16x larger. :func:`stage_costs` measures each stage on
its own input so that this shows up stage by stage and block by block.

* FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (one multiply-add = 2 FLOPs, only
  convolutions and matrix products are counted), as in :mod:`fastfcn.complexity`.
* Activation bytes are the bytes written by the leaf modules of the stage (every conv, BN, ReLU
  and pool output, in-place ones included): the memory traffic of the forward pass, an upper
  bound on what the stage needs to keep alive.
* Latency is the median wall time of the stage alone, under ``torch.inference_mode``, after
  warm-up runs; CUDA is synchronised around each run.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ..models.resnet import ResNet
from ..utils.timing import median_seconds

__all__ = ["STAGES", "StageCost", "format_table", "stage_costs", "stage_ratios",
           "stage_table"]

STAGES: tuple[str, ...] = ("stem", "layer1", "layer2", "layer3", "layer4")


@dataclass
class StageCost:
    """What one stage of a trunk costs for one input."""

    stage: str
    blocks: int                       # residual blocks (1 for the stem)
    output_shape: tuple[int, ...]     # (N, C, H, W) of the stage output
    stride: int                       # input side / output side
    flops: int
    activation_bytes: int
    output_bytes: int                 # bytes of the stage output alone
    seconds: float | None             # median latency; None when timing was skipped
    block_flops: list[int] = field(default_factory=list)
    block_activation_bytes: list[int] = field(default_factory=list)

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    @property
    def activation_mib(self) -> float:
        return self.activation_bytes / 2**20


def _stage_parts(model: ResNet) -> list[tuple[str, Callable[[Tensor], Tensor], list[nn.Module]]]:
    """(name, callable, blocks) for each stage; the stem is one block."""
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    parts: list[tuple[str, Callable[[Tensor], Tensor], list[nn.Module]]] = [("stem", model.stem, [stem])]
    for name in STAGES[1:]:
        layer = getattr(model, name)
        parts.append((name, layer, list(layer)))
    return parts


def _measure(fn: Callable[[Tensor], Tensor], blocks: list[nn.Module],
             x: Tensor) -> tuple[Tensor, list[int], list[int]]:
    """One forward of a stage: output, FLOPs and leaf-output bytes per block."""
    act = [0] * len(blocks)
    handles = []

    def make_hook(k: int):
        def hook(_mod: nn.Module, _inp: object, out: object) -> None:
            if isinstance(out, Tensor):
                act[k] += out.numel() * out.element_size()
        return hook

    for k, block in enumerate(blocks):
        for m in block.modules():
            if not list(m.children()):
                handles.append(m.register_forward_hook(make_hook(k)))
    counter = FlopCounterMode(display=False, depth=None)
    flops: list[int] = []
    try:
        with counter:
            # run block by block so that each block's FLOPs are read off the counter
            before = 0
            out = x
            if len(blocks) == 1:
                out = fn(x)
                flops.append(int(counter.get_total_flops()))
            else:
                for block in blocks:
                    out = block(out)
                    total = int(counter.get_total_flops())
                    flops.append(total - before)
                    before = total
    finally:
        for h in handles:
            h.remove()
    return out, flops, act


@torch.inference_mode()
def stage_costs(model: ResNet, input_size: int | tuple[int, int] = 512, *, batch_size: int = 1,
                runs: int = 3, warmup: int = 1, device: str | torch.device = "cpu",
                time_stages: bool = True, seed: int = 0) -> dict[str, StageCost]:
    """Measure FLOPs, activation bytes and latency of each stage of a ResNet trunk.

    Each stage is measured on the output of the previous one, so stage latencies add up to (about)
    the latency of the whole trunk. The model is put in eval mode and moved to ``device``.

    Args:
        model: a :class:`fastfcn.models.resnet.ResNet` (any depth, output stride 8 or 32).
        input_size: ``H`` or ``(H, W)`` of the random RGB input.
        runs, warmup: timed and untimed repetitions per stage (median reported); one untimed run,
            which makes the next stage's input, always happens and counts as the first warm-up.
        time_stages: set False to skip the timing and only count (``seconds`` is then None).

    FLOPs and bytes are counted on a ``meta`` copy of the trunk (shapes without data: the counts
    depend on shapes only, and counting on real tensors runs PyTorch's slower reference kernels).

    Returns:
        ``{"stem": StageCost, "layer1": ..., ..., "layer4": ...}`` in network order.
    """
    if not isinstance(model, ResNet):
        raise TypeError(f"stage_costs needs a fastfcn.models.resnet.ResNet, got {type(model).__name__}")
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    if h < 1 or w < 1 or batch_size < 1:
        raise ValueError(f"input size and batch size must be positive, got {(batch_size, h, w)}")
    device = torch.device(device)
    model.eval().to(device)
    shapes = copy.deepcopy(model).to("meta")
    x_meta = torch.empty(batch_size, 3, h, w, device="meta")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, 3, h, w, generator=gen).to(device) if time_stages else None
    costs: dict[str, StageCost] = {}
    for (name, fn_meta, blocks), (_, fn, _) in zip(_stage_parts(shapes), _stage_parts(model), strict=True):
        out, flops, act = _measure(fn_meta, blocks, x_meta)
        seconds = None
        if x is not None:
            y = fn(x)  # the first warm-up run, which also makes the next stage's input
            seconds = median_seconds(lambda fn=fn, x=x: fn(x), runs, max(warmup - 1, 0), str(device))
            x = y
        costs[name] = StageCost(
            stage=name, blocks=len(blocks) if name != "stem" else 1, output_shape=tuple(out.shape),
            stride=h // out.shape[-2], flops=sum(flops), activation_bytes=sum(act),
            output_bytes=out.numel() * out.element_size(), seconds=seconds,
            block_flops=flops, block_activation_bytes=act,
        )
        x_meta = out
    return costs


def stage_ratios(dilated: dict[str, StageCost], plain: dict[str, StageCost]) -> dict[str, dict[str, float]]:
    """Per stage (and ``total``), how many times more the dilated trunk costs than the plain one.

    Keys per stage: ``flops``, ``activation`` (bytes), ``seconds`` (NaN when not timed), ``pixels``
    (output positions). Both dicts must come from :func:`stage_costs` on the same input.
    """
    if list(dilated) != list(plain):
        raise ValueError(f"stages differ: {list(dilated)} vs {list(plain)}")

    def ratio(a: float | None, b: float | None) -> float:
        return float("nan") if a is None or b is None or b == 0 else a / b

    out: dict[str, dict[str, float]] = {}
    for name, d in dilated.items():
        p = plain[name]
        out[name] = {"flops": ratio(d.flops, p.flops), "activation": ratio(d.activation_bytes, p.activation_bytes),
                     "seconds": ratio(d.seconds, p.seconds),
                     "pixels": ratio(d.output_shape[-1] * d.output_shape[-2], p.output_shape[-1] * p.output_shape[-2])}
    timed = all(c.seconds is not None for c in (*dilated.values(), *plain.values()))
    out["total"] = {
        "flops": ratio(sum(c.flops for c in dilated.values()), sum(c.flops for c in plain.values())),
        "activation": ratio(sum(c.activation_bytes for c in dilated.values()),
                            sum(c.activation_bytes for c in plain.values())),
        "seconds": ratio(sum(c.seconds for c in dilated.values()), sum(c.seconds for c in plain.values()))
        if timed else float("nan"),
        "pixels": float("nan"),
    }
    return out


def stage_table(costs: dict[str, StageCost]) -> list[dict[str, object]]:
    """Rows (one per stage, plus ``total``) for printing: GFLOPs, MiB, ms, output shape."""
    rows: list[dict[str, object]] = []
    for c in costs.values():
        rows.append({"stage": c.stage, "blocks": c.blocks, "stride": c.stride,
                     "output": "x".join(map(str, c.output_shape[1:])), "GFLOPs": round(c.gflops, 2),
                     "act MiB": round(c.activation_mib, 1),
                     "ms": None if c.seconds is None else round(1e3 * c.seconds, 1)})
    timed = all(c.seconds is not None for c in costs.values())
    rows.append({"stage": "total", "blocks": sum(c.blocks for c in costs.values()), "stride": "",
                 "output": "", "GFLOPs": round(sum(c.gflops for c in costs.values()), 2),
                 "act MiB": round(sum(c.activation_mib for c in costs.values()), 1),
                 "ms": round(1e3 * sum(c.seconds for c in costs.values()), 1) if timed else None})
    return rows


def _cell(value: object) -> str:
    """A table cell: ``-`` for a missing value (None, or a NaN float such as the ``total`` row's pixels)."""
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return "-" if missing else str(value)


def format_table(rows: list[dict[str, object]]) -> str:
    """Plain-text table of dict rows (same keys), right-aligned, ``-`` for None and for NaN floats."""
    if not rows:
        return ""
    keys = list(rows[0])
    cells = [[str(k) for k in keys]] + [[_cell(r[k]) for k in keys] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(keys))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
