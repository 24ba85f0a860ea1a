"""The fast inference path: the same weights run in cheaper ways.

A *variant* joins tokens with ``+``: a numeric format (``fp32``; ``bf16`` or ``fp16`` autocast, with
``early_fp32`` keeping the backbone's first, high-resolution layers in fp32), the ``channels_last``
memory layout, ``fold_bn`` (BatchNorm folded into the convolutions, see :mod:`fastfcn.inference.fold`)
and ``compile`` (``torch.compile``). :func:`optimize` builds one variant of a model; how much each
variant gains and how many labels it changes is measured by :mod:`fastfcn.benchmark.variants`.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..utils.device import autocast
from .fold import fold_batchnorm

__all__ = ["VARIANT_TOKENS", "DTYPES", "parse_variant", "default_variants", "FullPrecision", "early_layers_in_fp32",
           "OptimizedModel", "optimize"]

VARIANT_TOKENS = ("fp32", "bf16", "fp16", "early_fp32", "channels_last", "fold_bn", "compile")
DTYPES = ("fp32", "bf16", "fp16")


def parse_variant(name: str, device: str) -> dict[str, Any]:
    """``"channels_last+bf16"`` -> ``{"dtype": "bf16", "early_fp32": False, "channels_last": True, "fold_bn": False,
    "compile": False}``."""
    tokens = name.split("+")
    bad = [t for t in tokens if t not in VARIANT_TOKENS]
    if bad or len(set(tokens)) != len(tokens):
        raise ValueError(f"bad fast-path variant {name!r}: join {', '.join(VARIANT_TOKENS)} with '+'")
    dtypes = [t for t in tokens if t in DTYPES]
    if len(dtypes) > 1:
        raise ValueError(f"fast-path variant {name!r} names more than one dtype")
    dtype = dtypes[0] if dtypes else "fp32"
    if dtype == "fp16" and not device.startswith("cuda"):
        raise ValueError(f"fast-path variant {name!r}: fp16 autocast is for CUDA; on the CPU use bf16")
    if "early_fp32" in tokens and dtype == "fp32":
        raise ValueError(f"fast-path variant {name!r}: early_fp32 keeps the first layers in fp32 when the rest "
                         "runs in bf16 or fp16; add one of them")
    return {"dtype": dtype, "early_fp32": "early_fp32" in tokens, "channels_last": "channels_last" in tokens,
            "fold_bn": "fold_bn" in tokens, "compile": "compile" in tokens}


def default_variants(device: str, with_compile: bool = True) -> list[str]:
    """Every combination worth trying on ``device`` (the first is the fp32 eager reference)."""
    low = ["fp16", "bf16"] if device.startswith("cuda") else ["bf16"]
    base = ["fp32", "channels_last", "fold_bn", "channels_last+fold_bn", *low]
    base += [f"channels_last+{d}" for d in low] + [f"channels_last+fold_bn+{d}" for d in low]
    base += [f"channels_last+fold_bn+{d}+early_fp32" for d in low]
    if with_compile:
        base += ["compile", "compile+channels_last", "compile+channels_last+fold_bn"]
        base += [f"compile+channels_last+fold_bn+{d}" for d in low]
        base += [f"compile+channels_last+fold_bn+{d}+early_fp32" for d in low]
    return base


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
    runs under its autocast; the output is the wrapped model's (a dict with ``"out"``)."""

    def __init__(self, model: nn.Module, variant: str, dtype: str, channels_last: bool) -> None:
        super().__init__()
        self.model = model
        self.variant = variant
        self.dtype = dtype
        self.layout = torch.channels_last if channels_last else torch.contiguous_format

    def forward(self, x: torch.Tensor) -> Any:
        with autocast(x.device, self.dtype):
            return self.model(x.contiguous(memory_format=self.layout))


def optimize(model: nn.Module, variant: str = "fp32", example: torch.Tensor | None = None) -> OptimizedModel:
    """A copy of ``model`` (put in eval mode) that runs as ``variant`` (e.g. ``"channels_last+fold_bn"``).

    ``example``: an input the model accepts, needed by ``fold_bn`` (which runs the model once to find the
    convolution/BatchNorm pairs and once to check the folded copy); a small crop is enough. ``model``
    itself is left as it was.
    """
    device = str(next(model.parameters()).device)
    v = parse_variant(variant, device)
    model = model.eval()
    if v["fold_bn"]:
        if example is None:
            raise ValueError(f"variant {variant!r} folds BatchNorm: pass an example input")
        m = fold_batchnorm(model, example)[0]
    else:
        m = copy.deepcopy(model)
    if v["early_fp32"]:
        early_layers_in_fp32(m)
    if v["channels_last"]:
        m = m.to(memory_format=torch.channels_last)
    if v["compile"]:
        m = torch.compile(m)
    return OptimizedModel(m, variant, v["dtype"], v["channels_last"])
