"""A roofline cost model: what a network's forward pass should cost on a GPU that this book cannot run.

Per layer (each leaf module of the network, and the functional work a parent module does itself,
such as EncNet's encoding products) the model takes the FLOPs that the package's counter
(:func:`fastfcn.complexity.complexity`, PyTorch's ``FlopCounterMode``) attributes to it and the bytes
it moves (its weights, plus its inputs read and its outputs written, fp32), and predicts

    time = max(FLOPs / peak FLOP/s, bytes / memory bandwidth) + kernels x launch cost.

It ignores caches, fusion, cuDNN's choice of algorithm and the layers' real efficiency, so it is a
bound and a shape, not a measurement: which layers are compute-bound, which are memory-bound, and how
much of the dilated model's extra arithmetic a GPU can hide. The counting runs on the ``meta``
device, so it costs no real forward pass.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["Gpu", "GPUS", "Layer", "layers", "predict_seconds", "LAUNCH_SECONDS"]

# one kernel's launch and scheduling overhead: an assumption of the model (a few microseconds on CUDA),
# not a vendor figure; the chapter that uses the model says so
LAUNCH_SECONDS = 5e-6


@dataclass(frozen=True)
class Gpu:
    """A GPU's peak fp32 arithmetic and memory bandwidth, with where the figures come from."""

    name: str
    peak_flops: float       # FLOP/s, fp32, no tensor cores
    bandwidth: float        # bytes/s, device memory
    source: str


# the vendor's figures, as published at launch and reproduced by the page cited
GPUS: dict[str, Gpu] = {g.name: g for g in [
    Gpu("Titan Xp", 12.0e12, 547.7e9,
        "NVIDIA's launch specifications (Peak SP 12.0 TFLOPS, 547.7 GB/s), as tabled by techgage.com, 2017-04"),
    Gpu("V100", 15.0e12, 900e9,
        "NVIDIA's Volta announcement table (Peak FP32 15 TFLOP/s at 1455 MHz; HBM2 900 GB/s), as reproduced by "
        "xenon.com.au and leiphone.com, 2017-05"),
    Gpu("H100 SXM", 67e12, 3350e9,
        "NVIDIA's H100 datasheet (FP32 67 TFLOPS, 3,350 GB/s), as tabled by hpctech.co.jp"),
]}


@dataclass(frozen=True)
class Layer:
    """One unit of work: a leaf module, or the functional ops of a parent module (``name`` + " (own ops)")."""

    name: str
    kind: str        # the module's class name
    flops: int       # the package's counter: 2 per multiply-add
    bytes: int       # weights + inputs read + outputs written
    kernels: int     # calls (one kernel each, as the model assumes)

    def seconds(self, gpu: Gpu, launch: float = LAUNCH_SECONDS) -> float:
        return max(self.flops / gpu.peak_flops, self.bytes / gpu.bandwidth) + self.kernels * launch

    def bound(self, gpu: Gpu) -> str:
        return "compute" if self.flops / gpu.peak_flops >= self.bytes / gpu.bandwidth else "memory"


def _tensor_bytes(value: object) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


class _Traffic:
    """Forward hooks that record ``{module: [bytes moved, calls]}`` (weights counted per call) and each
    module's caller: the module whose forward called it (not always its parent by name: a head may call
    a sibling's submodule). They run during the counter's own forward, so the model runs once."""

    def __init__(self, model: nn.Module) -> None:
        self.seen: dict[str, list[int]] = {}
        self.caller: dict[str, str] = {}
        self._stack: list[str] = []
        self._names = {m: n for n, m in model.named_modules()}
        self._model = model
        self._handles: list = []

    def _enter(self, module: nn.Module, inputs: tuple) -> None:
        name = self._names[module]
        if self._stack:
            self.caller.setdefault(name, self._stack[-1])
        self._stack.append(name)

    def _leave(self, module: nn.Module, inputs: tuple, output: object) -> None:
        self._stack.pop()
        own = sum(p.numel() * p.element_size() for p in module.parameters(recurse=False))
        own += sum(b.numel() * b.element_size() for b in module.buffers(recurse=False))
        entry = self.seen.setdefault(self._names[module], [0, 0])
        entry[0] += own + _tensor_bytes(inputs) + _tensor_bytes(output)
        entry[1] += 1

    def __enter__(self) -> _Traffic:
        self._handles = [h for m in self._model.modules()
                         for h in (m.register_forward_pre_hook(self._enter), m.register_forward_hook(self._leave))]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()


# modules whose output is an uncounted elementwise function of their one input
_SHAPE_PRESERVING = (nn.modules.batchnorm._BatchNorm, nn.ReLU, nn.Dropout, nn.Dropout2d)


@contextlib.contextmanager
def _shape_only_elementwise(model: nn.Module) -> Iterator[None]:
    """BatchNorm, ReLU and interpolation on the meta device run PyTorch's Python decompositions (most of
    the counting time); they do no FLOPs the counter counts, so an empty tensor of their output's shape
    stands in for them while counting (the bytes are the same), for meta tensors only. Everything is restored
    afterwards."""
    norms = [m for m in model.modules() if isinstance(m, _SHAPE_PRESERVING)]
    interpolate = F.interpolate

    def resized(x: torch.Tensor, size: int | Sequence[int] | None = None, *args: object, **kwargs: object) -> torch.Tensor:
        # interpolation's FLOPs are not counted and its bytes are its caller's: only the output's shape matters.
        # The patch is process-wide while counting: real tensors (another thread's) go to the real function.
        if size is None or x.dim() != 4 or not x.is_meta:
            return interpolate(x, size, *args, **kwargs)
        height, width = (size, size) if isinstance(size, int) else size
        return x.new_empty(x.shape[0], x.shape[1], height, width)

    for m in norms:
        m.forward = torch.empty_like
    F.interpolate = resized
    try:
        yield
    finally:
        F.interpolate = interpolate
        for m in norms:
            del m.forward


def layers(model: nn.Module, input_size: int = 512) -> list[Layer]:
    """Every layer of ``model`` for one ``input_size`` square RGB image, in the order the counter met them.

    The FLOPs of the layers add up to :func:`fastfcn.complexity.complexity`'s total exactly: a parent
    module's FLOPs not inside one of its children become a layer of their own."""
    param = next(model.parameters())
    shapes = model if param.is_meta else copy.deepcopy(model).to("meta")
    shapes.eval()
    x = torch.empty(1, 3, input_size, input_size, device="meta", dtype=param.dtype)
    counter = FlopCounterMode(display=False, depth=10**6)
    with _shape_only_elementwise(shapes), _Traffic(shapes) as traffic_hooks, counter, torch.no_grad():
        shapes(x)
    prefix = type(shapes).__name__
    flops = {(k[len(prefix) + 1:] if k.startswith(prefix + ".") else ""): int(sum(v.values()))
             for k, v in counter.get_flop_counts().items() if k == prefix or k.startswith(prefix + ".")}
    traffic, parent = traffic_hooks.seen, traffic_hooks.caller
    kinds = {n: type(m).__name__ for n, m in shapes.named_modules()}
    inner: dict[str, int] = {}
    for name, up in parent.items():
        inner[up] = inner.get(up, 0) + flops.get(name, 0)
    out = []
    for name in traffic:
        nbytes, calls = traffic[name]
        if not any(up == name for up in parent.values()):
            out.append(Layer(name, kinds[name], flops.get(name, 0), nbytes, calls))
            continue
        own = flops.get(name, 0) - inner.get(name, 0)
        if own > 0:  # work the parent does itself; its bytes: what it reads and writes
            out.append(Layer(f"{name or prefix} (own ops)", kinds[name], own, nbytes, calls))
    return out


def predict_seconds(model_layers: list[Layer], gpu: Gpu, launch: float = LAUNCH_SECONDS) -> float:
    """The predicted time of one forward pass: the layers' roofline times added up (no overlap)."""
    return sum(layer.seconds(gpu, launch) for layer in model_layers)
