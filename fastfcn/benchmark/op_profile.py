"""Where one forward spends its time, op by op, in torch and in ONNX Runtime, on the same input.

Both runtimes are asked the same question: how many milliseconds of one forward each *kind* of operation
takes (convolutions, resizes, pooling, concatenation, element-wise passes such as ReLU and the residual
additions, layout copies, the rest), and, for the convolutions, which layer shapes. torch answers through
``torch.profiler`` (self CPU time of each aten op, which the dispatcher's nesting would otherwise count
twice); ONNX Runtime through its own session profiler (the kernel time of each graph node). Both run
with profiling on, which costs a little in each; the comparison is between them, measured alike.

On a 2-core AVX2 EPYC (Zen 1), EncNet+JPU, ResNet-50s, 512x512, 2026-12-03: with folded BatchNorm in PyTorch's
default layout the convolutions took 1.19x ONNX Runtime's time, JPU's depthwise convolutions 9x (147 ms against
16 ms). That led to :mod:`fastfcn.inference.split_depthwise`; after it, channels_last+fold_bn's convolutions took
1.05x ONNX Runtime's, and what was left was mostly outside them (0.24 s against 0.06 s): the concatenations
(ONNX Runtime's convolutions write into the concatenated buffer), the ReLU and residual passes it fuses into its
convolutions, the layout copies. ``scripts/profile_ops.py`` prints the table for any row.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["KINDS", "op_kind", "torch_op_times", "onnxruntime_op_times", "compare_op_times", "profile_model"]

# the kinds an op is sorted into, in the order a table shows them
KINDS = ("convolution", "resize", "pooling", "concatenation", "element-wise", "layout copies", "other")

# torch: exact aten names where a prefix would catch others too (aten::add is not aten::addmm), else parts
_TORCH_EXACT = {
    "concatenation": {"aten::cat", "aten::stack"},
    "element-wise": {f"aten::{op}{tail}" for op in ("relu", "clamp_min", "add", "mul", "sub", "div", "pow",
                                                    "sigmoid", "exp", "batch_norm", "native_batch_norm")
                     for tail in ("", "_")},
    "layout copies": {"aten::copy_", "aten::contiguous", "aten::to_mkldnn", "aten::_to_dense", "aten::clone",
                      "aten::_to_copy"},
}
_TORCH_PARTS = {
    "convolution": ("conv",),
    "resize": ("upsample", "grid_sampler"),
    "pooling": ("pool",),
}
_ONNX_KINDS = {
    "convolution": ("Conv", "FusedConv", "NchwcConv"),
    "resize": ("Resize", "Upsample"),
    "pooling": ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "NchwcMaxPool"),
    "concatenation": ("Concat",),
    "element-wise": ("Relu", "Add", "Mul", "Sub", "Div", "Pow", "Sigmoid", "Exp", "Sum",
                     "BatchNormalization"),
    "layout copies": ("ReorderInput", "ReorderOutput", "Transpose", "Reshape", "Flatten"),
}


def op_kind(name: str, runtime: str) -> str:
    """The kind (one of :data:`KINDS`) of a torch aten op name (``runtime="torch"``) or an ONNX op type."""
    if runtime == "torch":
        for kind, names in _TORCH_EXACT.items():
            if name in names:
                return kind
        for kind, parts in _TORCH_PARTS.items():
            if any(p in name for p in parts):
                return kind
        return "other"
    for kind, types in _ONNX_KINDS.items():
        if name in types:
            return kind
    return "other"


def _conv_key(shapes: Iterable[Any]) -> str:
    """``"1x512x64x64 * 512x512x3x3"``: a convolution's input and weight shapes."""
    shapes = [s for s in shapes if s]
    return " * ".join("x".join(str(d) for d in s) for s in shapes[:2])


def _accumulate(events: Iterable[tuple[str, float, list[Any]]], runtime: str, runs: int) -> dict[str, Any]:
    kinds: dict[str, float] = defaultdict(float)
    convs: dict[str, float] = defaultdict(float)
    for name, ms, shapes in events:
        kind = op_kind(name, runtime)
        kinds[kind] += ms / runs
        if kind == "convolution" and shapes:
            convs[_conv_key(shapes)] += ms / runs
    return {"kinds": {k: kinds.get(k, 0.0) for k in KINDS}, "convolutions": dict(convs),
            "total_ms": sum(kinds.values())}


def torch_op_times(model: Callable[[Tensor], Any], x: Tensor, runs: int = 1) -> dict[str, Any]:
    """Milliseconds per forward of ``model(x)`` by op kind and by convolution shape (torch's profiler, self CPU
    time of the leaf aten ops). One unprofiled forward first, so that one-time set-up is not counted."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad():
        model(x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(runs):
                model(x)
    events = [(e.key, e.self_cpu_time_total / 1e3, list(e.input_shapes or []))
              for e in prof.key_averages(group_by_input_shape=True) if e.self_cpu_time_total > 0]
    # the convolution's time is in the kernel (aten::mkldnn_convolution, ...): its callers (aten::conv2d,
    # aten::_convolution) have next to no self time, and keep their shapes out of the per-shape table
    events = [(n, ms, s if n in ("aten::mkldnn_convolution", "aten::thnn_conv2d",
                               "aten::_slow_conv2d_forward", "aten::_nnpack_spatial_convolution") else [])
              for n, ms, s in events]
    return _accumulate(events, "torch", runs)


def onnxruntime_op_times(onnx_path: str | Path, x: Tensor, runs: int = 1, threads: int | None = None
                         ) -> dict[str, Any]:
    """Milliseconds per run of the ONNX graph at ``onnx_path`` on ``x`` by op kind and by convolution shape
    (ONNX Runtime's session profiler: each node's kernel time). The first run is set aside."""
    from ..inference.runtimes import require

    ort = require("onnxruntime", "the ONNX Runtime op profile")
    with tempfile.TemporaryDirectory(prefix="fastfcn-ortprof-") as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "ort")
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x.detach().cpu().float().contiguous().numpy()}
        for _ in range(runs + 1):
            session.run(None, feed)
        trace = json.loads(Path(session.end_profiling()).read_text())
    nodes = [e for e in trace if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")]
    per_run = len(nodes) // (runs + 1)  # every run of the graph records the same nodes
    events = [(e["args"].get("op_name", "?"), e["dur"] / 1e3,
               [next(iter(d.values())) for d in e["args"].get("input_type_shape", [])])
              for e in nodes[per_run:]]  # the first run (set-up: memory planning, weight packing) set aside
    return _accumulate(events, "onnxruntime", runs)


def compare_op_times(ours: Mapping[str, Any], theirs: Mapping[str, Any], top: int = 8
                     ) -> dict[str, list[tuple[str, float, float]]]:
    """``{"kinds": [(kind, ours ms, theirs ms)], "convolutions": [(shape, ours ms, theirs ms)]}``: every kind,
    and the ``top`` convolution shapes by our time (a shape the other graph lacks reads 0)."""
    kinds = [(k, ours["kinds"][k], theirs["kinds"][k]) for k in KINDS]
    shapes = sorted(ours["convolutions"], key=lambda s: -ours["convolutions"][s])[:top]
    convs = [(s, ours["convolutions"][s], theirs["convolutions"].get(s, 0.0)) for s in shapes]
    return {"kinds": kinds, "convolutions": convs}


def profile_model(model: nn.Module, variant: str, size: int, runs: int = 1) -> dict[str, Any]:
    """Both profiles of ``model`` (eval mode) at ``size`` x ``size``: torch running ``variant`` (a fast-path
    variant, e.g. ``"fold_bn"``) against ONNX Runtime on the model's exported graph."""
    from ..inference.fast_path import optimize
    from ..inference.runtimes import export_onnx

    model = model.eval()
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    ours = torch_op_times(optimize(model, variant), x, runs)
    with tempfile.TemporaryDirectory(prefix="fastfcn-onnx-") as tmp:
        path = export_onnx(model, Path(tmp) / "model.onnx")
        theirs = onnxruntime_op_times(path, x, runs)
    return {"variant": variant, "size": size, "runs": runs, "torch": ours, "onnxruntime": theirs,
            "compared": compare_op_times(ours, theirs)}
