"""The fast inference path: the same weights run in cheaper ways.

A *variant* joins tokens with ``+``: a numeric format (``fp32``; ``bf16`` or ``fp16`` autocast, with
``early_fp32`` keeping the backbone's first, high-resolution layers in fp32), the ``channels_last``
memory layout, ``fold_bn`` (BatchNorm folded into the convolutions, see :mod:`fastfcn.inference.fold`)
and ``compile`` (``torch.compile``, with the weights frozen); or another runtime on the exported graph
(``onnxruntime``; ``openvino``, alone for its default precision or with ``fp32``/``bf16``, see
:mod:`fastfcn.inference.runtimes`), where ``int8`` runs the graph quantized (:mod:`fastfcn.inference.quantize`). The presets ``exact``, ``reduced`` and ``auto`` name the variants a
user picks from (:func:`resolve_variant`). :func:`optimize` builds one variant of a model; how much each
variant gains and how many labels it changes is measured by :mod:`fastfcn.benchmark.variants`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import FastFCN
from ..utils.device import autocast
from .exact_path import EXACT_DEFAULT, compile_pays_off, recorded_exact
from .fold import fold_batchnorm
from .split_depthwise import to_channels_last

__all__ = ["VARIANT_TOKENS", "DTYPES", "RUNTIME_TOKENS", "PRESETS", "EXACT", "parse_variant", "resolve_variant", "variant_for",
           "default_variants", "native_variants", "compiler_available", "auto_compile",
           "compiled_where_it_pays",
           "compilable_variants", "other_runtimes", "FullPrecision", "early_layers_in_fp32", "OptimizedModel", "optimize"]

VARIANT_TOKENS = ("fp32", "bf16", "fp16", "int8", "early_fp32", "channels_last", "fold_bn", "compile", "onnxruntime",
                  "openvino")
DTYPES = ("fp32", "bf16", "fp16")
RUNTIME_TOKENS = ("onnxruntime", "openvino")
# named choices, resolved per device by resolve_variant
PRESETS = ("exact", "reduced", "auto")
EXACT = EXACT_DEFAULT  # the exact path where this machine has measured none; bf16 builds on it (it wants NHWC)


def parse_variant(name: str, device: str) -> dict[str, Any]:
    """``"channels_last+bf16"`` -> ``{"runtime": "torch", "dtype": "bf16", "dtype_given": True, "early_fp32": False,
    "channels_last": True, "fold_bn": False, "compile": False}``."""
    tokens = name.split("+")
    bad = [t for t in tokens if t not in VARIANT_TOKENS]
    if bad or len(set(tokens)) != len(tokens):
        raise ValueError(f"bad fast-path variant {name!r}: join {', '.join(VARIANT_TOKENS)} with '+', or use one "
                         f"of {', '.join(PRESETS)}")
    dtypes = [t for t in tokens if t in (*DTYPES, "int8")]  # int8: the exported graph quantized
    if len(dtypes) > 1:
        raise ValueError(f"fast-path variant {name!r} names more than one dtype")
    dtype = dtypes[0] if dtypes else "fp32"
    runtimes = [t for t in tokens if t in RUNTIME_TOKENS]
    if runtimes:
        extra = [t for t in tokens if t not in dtypes and t not in RUNTIME_TOKENS]
        if len(runtimes) > 1 or extra:
            raise ValueError(f"fast-path variant {name!r}: {runtimes[0]} runs the exported graph as it is; it "
                             "takes no other runtime, layout, folding or compilation token")
        if not device.startswith("cpu"):
            raise ValueError(f"fast-path variant {name!r}: {runtimes[0]} is run on the CPU here; use device cpu")
        allowed = ("fp32", "int8") if runtimes[0] == "onnxruntime" else ("fp32", "bf16", "int8")
        if dtype not in allowed:
            raise ValueError(f"fast-path variant {name!r}: {runtimes[0]} runs {' or '.join(allowed)}")
    elif dtype == "int8":
        raise ValueError(f"fast-path variant {name!r}: int8 runs an exported graph, quantized; use onnxruntime+int8 "
                         "or openvino+int8")
    if dtype == "fp16" and not device.startswith("cuda"):
        raise ValueError(f"fast-path variant {name!r}: fp16 autocast is for CUDA; on the CPU use bf16")
    if "early_fp32" in tokens and dtype == "fp32":
        raise ValueError(f"fast-path variant {name!r}: early_fp32 keeps the first layers in fp32 when the rest "
                         "runs in bf16 or fp16; add one of them")
    return {"runtime": runtimes[0] if runtimes else "torch", "dtype": dtype, "dtype_given": bool(dtypes),
            "early_fp32": "early_fp32" in tokens, "channels_last": "channels_last" in tokens,
            "fold_bn": "fold_bn" in tokens, "compile": "compile" in tokens}


def resolve_variant(variant: str, device: str) -> str:
    """A preset as the variant it stands for on ``device`` (other variants are returned as they are).

    * ``exact``: fp32 with BatchNorm folded: the same function as the model, to float rounding (the labels of
      fp32 eager on the check images); in the memory layout measured faster on this machine
      (:mod:`fastfcn.inference.exact_path`), channels-last where nothing was measured.
    * ``reduced``: ``exact`` plus bf16 autocast (fp16 on a GPU without bf16) with the early layers in
      fp32; on a CPU that does not compute bf16 natively (no AVX-512 BF16 or AMX) bf16 runs slower than
      fp32, so this falls back to ``exact`` with a warning.
    * ``auto``: ONNX Runtime where it is installed and the device is the CPU (it is faster than our
      exact path there, as the benchmark of chapter 6 measures), else ``exact``.
    """
    if variant == "exact":
        return recorded_exact(device) or EXACT
    if variant == "reduced":
        from ..utils.device import bf16_supported

        if bf16_supported(device):
            return f"{EXACT}+bf16+early_fp32"
        if device.startswith("cuda"):
            return f"{EXACT}+fp16+early_fp32"
        warnings.warn("this CPU does not compute bfloat16 natively (no AVX-512 BF16 or AMX), so bf16 would run "
                      "slower than fp32: running the exact fp32 path instead", RuntimeWarning, stacklevel=2)
        return resolve_variant("exact", device)
    if variant == "auto":
        from .runtimes import available

        return "onnxruntime" if device.startswith("cpu") and available("onnxruntime") else resolve_variant("exact", device)
    return variant


def variant_for(runtime: str = "auto", precision: str = "fp32", device: str = "cpu", compile: bool = False) -> str:
    """The variant a user's choice of runtime and precision stands for (``fastfcn predict/eval --runtime
    --precision``): ``torch`` runs ``exact`` or ``reduced``; ``onnxruntime`` fp32; ``openvino`` fp32 or bf16;
    ``auto`` is ONNX Runtime for fp32 and OpenVINO's default precision for bf16 where they are installed."""
    from .runtimes import available

    if runtime not in ("auto", "torch", *RUNTIME_TOKENS):
        raise ValueError(f"unknown runtime {runtime!r}; choose auto, torch, onnxruntime or openvino")
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"unknown precision {precision!r}; choose fp32 (exact) or bf16 (faster, a few labels change)")
    if compile and runtime not in ("torch", "auto"):
        raise ValueError(f"compilation is for the torch runtime; {runtime} optimises its graph itself")
    if compile and device.startswith("cpu") and not compiler_available():
        raise ValueError("compiling needs a C++ compiler (torch.compile builds C++ code, with g++ unless configured) "
                         "and none was found: install one (e.g. apt-get install g++) or leave --compile out")
    if runtime == "auto":
        cpu = device.startswith("cpu")
        if compile or not cpu:
            runtime = "torch"
        elif precision == "fp32":
            runtime = "onnxruntime" if available("onnxruntime") else "torch"
        else:
            from ..utils.device import bf16_supported

            runtime = "openvino" if available("openvino") and bf16_supported(device) else "torch"
            if runtime == "openvino":
                return "openvino"  # its default precision: bf16 on this CPU
    if runtime == "torch":
        name = resolve_variant("exact" if precision == "fp32" else "reduced", device)
        return f"compile+{name}" if compile else name
    if runtime == "onnxruntime" and precision != "fp32":
        raise ValueError("ONNX Runtime runs fp32 here; for bf16 use --runtime openvino or --runtime torch")
    return f"{runtime}+{precision}" if runtime == "openvino" else runtime


def default_variants(device: str, with_compile: bool = True) -> list[str]:
    """Every combination worth trying on ``device`` (the first is the fp32 eager reference)."""
    # emulated bf16 (a CPU without AVX-512 BF16 or AMX) runs tens of times slower than fp32: not worth timing
    from ..utils.device import bf16_supported

    low = ["fp16", "bf16"] if device.startswith("cuda") else (["bf16"] if bf16_supported(device) else [])
    base = ["fp32", "channels_last", "fold_bn", "channels_last+fold_bn", *low]
    base += [f"channels_last+{d}" for d in low] + [f"channels_last+fold_bn+{d}" for d in low]
    base += [f"channels_last+fold_bn+{d}+early_fp32" for d in low]
    if with_compile:
        base += ["compile", "compile+channels_last", "compile+channels_last+fold_bn"]
        base += [f"compile+channels_last+fold_bn+{d}" for d in low]
        base += [f"compile+channels_last+fold_bn+{d}+early_fp32" for d in low]
    return base + other_runtimes(device)


def native_variants(variants: list[str], device: str) -> tuple[list[str], list[str]]:
    """``variants`` split into those this device computes natively and the bf16 ones it would emulate
    (a CPU without AVX-512 BF16 or AMX: measured 45 times slower than fp32 on an AVX2 EPYC, so timing
    them would take hours and show nothing a user would pick)."""
    from ..utils.device import bf16_supported

    if device.startswith("cuda") or bf16_supported(device):
        return list(variants), []
    emulated = [v for v in variants if "bf16" in v.split("+")]
    return [v for v in variants if v not in emulated], emulated


def compiler_available() -> bool:
    """Whether ``torch.compile`` can build code for the CPU here: Inductor compiles C++ with the system's compiler
    (``g++`` unless configured), which a minimal machine may not have."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        get_cpp_compiler()
    except Exception:  # InvalidCxxCompiler, or an Inductor without this function: treat as no compiler
        return False
    return True


def auto_compile(variant: str, config: dict[str, Any], mode: str, forwards: int, crop_size: int,
                 device: str = "cpu") -> str | None:
    """Why a run of ``variant`` should compile its network (one line to show), or ``None``: only the torch
    path in fp32 on the CPU in ``slide`` mode (every forward one ``crop_size`` crop, so it compiles once),
    with a C++ compiler, and only where this machine measured compiling this network to pay for itself in
    fewer than ``forwards`` calls (:func:`fastfcn.inference.exact_path.compile_pays_off`)."""
    v = parse_variant(variant, device)
    if (mode != "slide" or v["compile"] or v["runtime"] != "torch" or v["dtype"] != "fp32"
            or not device.startswith("cpu")):
        return None
    reason = compile_pays_off(config, forwards, crop_size, device)
    return reason if reason is not None and compiler_available() else None


def compiled_where_it_pays(variant: str, compile: bool | None, runtime: str, precision: str, device: str,
                           config: dict[str, Any], mode: str, forwards: int,
                           crop_size: int) -> tuple[str, str | None]:
    """``variant`` (from :func:`variant_for` with ``compile``), compiled where ``compile`` is ``None`` and
    :func:`auto_compile` says it pays off for the run's ``forwards``; with the reason to show, or ``None``."""
    reason = auto_compile(variant, config, mode, forwards, crop_size, device) if compile is None else None
    return (variant_for(runtime, precision, device, True), reason) if reason is not None else (variant, None)


def compilable_variants(variants: list[str], device: str) -> tuple[list[str], list[str]]:
    """``variants`` split into those that can run here and the compiled ones that cannot (a CPU machine without
    a C++ compiler: ``torch.compile`` would fail at the first call)."""
    if not str(device).startswith("cpu") or compiler_available():
        return list(variants), []
    left_out = [v for v in variants if "compile" in v.split("+")]
    return [v for v in variants if v not in left_out], left_out


def other_runtimes(device: str) -> list[str]:
    """The installed runtimes' variants worth timing on ``device`` (none on a GPU): ONNX Runtime fp32 and
    int8, OpenVINO with the f32 hint, at its default precision (bf16 where the CPU computes it) and on the
    int8 graph (quantized by ONNX Runtime's tools, so only where ONNX Runtime is installed too)."""
    from .runtimes import available

    if not device.startswith("cpu"):
        return []
    ort = available("onnxruntime")
    found = ["onnxruntime", "onnxruntime+int8"] if ort else []
    return found + (["openvino+fp32", "openvino", *(["openvino+int8"] if ort else [])] if available("openvino") else [])


class FullPrecision(nn.Module):
    """Runs ``module`` in fp32 with autocast switched off, whatever precision surrounds it."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *inputs: torch.Tensor) -> Any:
        with torch.autocast(inputs[0].device.type, enabled=False):
            return self.module(*(x.float() for x in inputs))


def early_layers_in_fp32(model: nn.Module) -> nn.Module:
    """Keep the backbone's stem and ``layer1`` in fp32 under autocast (in place; returns ``model``).

    These layers work at 1/2 and 1/4 of the input resolution, where the features that place class
    boundaries are formed; rounding them to 16 bits moves boundaries by a pixel here and there.
    In EncNet+JPU on the deep-stem ResNet-50 at 512x512 they hold 11.2 of the 66.5 GMACs.
    """
    backbone = model.backbone
    backbone.conv1 = FullPrecision(backbone.conv1)
    backbone.layer1 = FullPrecision(backbone.layer1)
    return model


class OptimizedModel(nn.Module):
    """A model run in one fast-path variant: inputs are put in the variant's memory layout and the forward
    runs under its autocast, without the auxiliary and SE heads (they serve the training loss only); the
    output is a dict with ``"out"``. ``config`` is the wrapped model's configuration."""

    def __init__(self, model: nn.Module, variant: str, dtype: str, channels_last: bool, main_only: bool,
                 config: dict[str, Any] | None = None, compiled: bool = False, compile_fallback: bool = False) -> None:
        super().__init__()
        self.model = model
        self.variant = variant
        self.dtype = dtype
        self.layout = torch.channels_last if channels_last else torch.contiguous_format
        self.main_only = main_only
        self.compiled = compiled
        self.compiled_once = False  # whether a compiled call has succeeded (the first one compiles)
        self.compile_fallback = compile_fallback  # run eager, with a warning, where the first compiled call fails
        self.config = dict(config or {})

    def forward(self, x: torch.Tensor) -> Any:
        x = x.contiguous(memory_format=self.layout)
        if not self.compiled or self.compiled_once or not self.compile_fallback:
            return self._run(x)
        try:  # the first call compiles: a compiler that fails there must not end the run
            out = self._run(x)
        except Exception as exc:  # noqa: BLE001  Inductor/C++ failures have many types; eager decides below
            eager = getattr(self.model, "_orig_mod", None)
            if eager is None:
                raise
            self.model, self.compiled = eager, False
            self.variant = "+".join(t for t in self.variant.split("+") if t != "compile")
            out = self._run(x)  # a failure of the network itself raises here
            first_line = (str(exc).splitlines() or [""])[0][:200]
            warnings.warn(f"compiling the network failed ({type(exc).__name__}: {first_line}); running it without "
                          f"compiling ({self.variant})", RuntimeWarning, stacklevel=2)
            return out
        self.compiled_once = True
        return out

    def _run(self, x: torch.Tensor) -> Any:
        # freezing: the compiler treats the weights as constants (folds BatchNorm, pre-packs the
        # convolution weights); right for inference only, so it is switched on for these calls alone
        frozen = _inductor_freezing() if self.compiled else contextlib.nullcontext()
        with autocast(x.device, self.dtype), frozen:
            return self.model(x, with_aux=False) if self.main_only else self.model(x)


def _inductor_freezing() -> Any:
    from torch._inductor import config

    return config.patch(freezing=True)


class _NoCudaRuntimeNote(logging.Filter):
    """Drops the note torch's C++ builder logs when it compiles for the CPU on a machine with a CUDA folder but
    no GPU ("No CUDA runtime is found, using CUDA_HOME=..."): nothing is wrong, and the book would show it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No CUDA runtime is found")


def _quiet_cpu_compile() -> None:
    builder = logging.getLogger("torch.utils.cpp_extension")
    if not any(isinstance(f, _NoCudaRuntimeNote) for f in builder.filters):
        builder.addFilter(_NoCudaRuntimeNote())


def optimize(model: nn.Module, variant: str = "exact", example: torch.Tensor | None = None, *,
             onnx_path: str | Path | None = None, spinning: bool = True,
             compile_fallback: bool = False) -> OptimizedModel:
    """A copy of ``model`` (put in eval mode) that runs as ``variant`` for inference: a preset (``exact``,
    ``reduced``, ``auto``; see :func:`resolve_variant`) or tokens joined by ``+`` (e.g.
    ``"channels_last+fold_bn"``, ``"onnxruntime"``, ``"openvino+fp32"``).

    ``example``: an input the model accepts, needed by ``fold_bn`` (which runs the model once to find the
    convolution/BatchNorm pairs and once to check the folded copy); a small crop is enough (default: a
    random 64x64 image). ``onnx_path``: an exported graph of this model for ``onnxruntime``/``openvino``
    (default: exported now, which takes a while; see :func:`fastfcn.inference.runtimes.export_onnx`); for an
    ``int8`` variant an fp32 graph is quantized now (:func:`fastfcn.inference.quantize.int8_graph`), an int8
    graph run as it is. ``spinning``: ONNX Runtime's threads spin between runs (its default; see
    :class:`fastfcn.inference.runtimes.OnnxRuntimeModel`). ``compile_fallback``: where compiling fails in the
    first call, run the model uncompiled with a :class:`RuntimeWarning` instead of raising (predict and eval;
    a benchmark raises, so that a row never times another variant than its name).
    ``model`` itself is left as it was. The result's ``variant`` is the resolved variant.
    """
    device = str(next(model.parameters()).device)
    name = resolve_variant(variant, device)
    v = parse_variant(name, device)
    model = model.eval()
    config = getattr(model, "config", None)
    if v["runtime"] != "torch":
        from .quantize import int8_graph
        from .runtimes import OnnxRuntimeModel, OpenVinoModel

        with int8_graph(model, onnx_path) if v["dtype"] == "int8" else contextlib.nullcontext(onnx_path) as graph:
            if v["runtime"] == "onnxruntime":
                engine: nn.Module = OnnxRuntimeModel(model, graph, config=config, spinning=spinning)
            else:  # the int8 graph's arithmetic is set by its QDQ pairs; the hint keeps the rest in fp32
                hint = "fp32" if v["dtype"] == "int8" else v["dtype"] if v["dtype_given"] else None
                engine = OpenVinoModel(model, graph, config=config, precision=hint)
        return OptimizedModel(engine, name, "fp32", False, main_only=False, config=config)
    main_only = isinstance(model, FastFCN)
    if v["fold_bn"]:
        if example is None:
            example = torch.randn(1, 3, 64, 64, device=device)
        m = fold_batchnorm(model, example)[0]
    else:
        m = copy.deepcopy(model)
    if v["early_fp32"]:
        early_layers_in_fp32(m)
    if v["channels_last"]:
        m = to_channels_last(m, device)
    if v["compile"]:
        _quiet_cpu_compile()
        m = torch.compile(m)
    return OptimizedModel(m, name, v["dtype"], v["channels_last"], main_only=main_only, config=config,
                          compiled=v["compile"], compile_fallback=compile_fallback)
