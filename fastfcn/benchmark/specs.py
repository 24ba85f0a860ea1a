"""What the benchmark measures: the rows of the paper's Table 2 and torchvision's dilated models.

A :class:`ModelSpec` names one network. By default the Table 2 rows are built on the deep-stem
``resnet50s``/``resnet101s`` of the official models (``stem="torchvision"`` selects the 7x7-stem
layout); a ``substitute`` backbone (e.g. ``resnet18``) builds every row on a small trunk for smoke runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import paper
from ..models import HEADS, UPSAMPLINGS
from ..models.resnet import BACKBONES

__all__ = ["TORCHVISION_MODELS", "STEMS", "ModelSpec", "check_choices", "table2_specs", "parse_rows",
           "torchvision_specs", "dilated_jpu_spec", "spec_fields"]

TORCHVISION_MODELS = ("deeplabv3_resnet50", "deeplabv3_resnet101", "fcn_resnet50")


STEMS = ("deep", "torchvision")


@dataclass(frozen=True)
class ModelSpec:
    """One network to measure: a FastFCN configuration or a torchvision segmentation model."""

    kind: str                        # "fastfcn" | "torchvision"
    name: str                        # display name: "encnet/jpu", "deeplabv3_resnet50", ...
    head: str | None = None
    backbone: str | None = None      # the backbone actually built (resnet50s, resnet18, ...)
    upsampling: str | None = None
    paper_backbone: str | None = None  # the Table 2 row it stands for (resnet50 | resnet101)
    dilated_backbone: bool = False   # bilinear/FPN/JPU on top of a dilated OS8 trunk (as some ports do)

    @property
    def output_stride(self) -> int:
        if self.kind == "torchvision" or self.upsampling == "none" or self.dilated_backbone:
            return 8
        return 32

    @property
    def paper_row(self) -> paper.Row | None:
        if self.kind != "fastfcn" or self.dilated_backbone:
            return None
        for r in paper.TABLE2:
            if (r.head, r.backbone, r.upsampling) == (self.head, self.paper_backbone, self.upsampling):
                return r
        return None


def check_choices(what: str, values: Iterable[str] | None, options: Sequence[str]) -> list[str] | None:
    if values is None:
        return None
    values = [values] if isinstance(values, str) else list(values)
    bad = [v for v in values if v not in options]
    if bad:
        raise ValueError(f"unknown {what} {', '.join(map(repr, bad))}; choose from {', '.join(options)}")
    return values


def _our_backbone(paper_backbone: str, stem: str, substitute: str | None) -> str:
    if substitute is not None:
        if substitute not in BACKBONES:
            raise ValueError(f"unknown substitute backbone {substitute!r}; choose from {', '.join(BACKBONES)}")
        return substitute
    return paper_backbone + ("s" if stem == "deep" else "")


def table2_specs(backbones: Iterable[str] | None = None, heads: Iterable[str] | None = None,
                 upsamplings: Iterable[str] | None = None, stem: str = "deep",
                 substitute: str | None = None) -> list[ModelSpec]:
    """The rows of the paper's Table 2, optionally filtered.

    Args:
        backbones: the paper's backbones to keep (``resnet50``, ``resnet101``); default both.
        heads: ``encnet``, ``aspp``, ``psp``; upsamplings: ``none``, ``bilinear``, ``fpn``, ``jpu``.
        stem: ``"deep"`` builds ``resnet50s``/``resnet101s`` (three 3x3 stem convolutions, as the
            official models); ``"torchvision"`` builds the 7x7-stem ``resnet50``/``resnet101``.
        substitute: build every row on this backbone instead (e.g. ``resnet18`` for smoke tests).
    """
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose from {', '.join(STEMS)}")
    backbones = check_choices("backbone", backbones, ("resnet50", "resnet101"))
    heads = check_choices("head", heads, ("encnet", "aspp", "psp"))
    upsamplings = check_choices("upsampling", upsamplings, UPSAMPLINGS)
    specs = []
    for r in paper.TABLE2:
        if ((backbones and r.backbone not in backbones) or (heads and r.head not in heads)
                or (upsamplings and r.upsampling not in upsamplings)):
            continue
        specs.append(ModelSpec("fastfcn", f"{r.head}/{r.upsampling}", r.head,
                               _our_backbone(r.backbone, stem, substitute), r.upsampling, r.backbone))
    if not specs:
        raise ValueError("the filters select no row of Table 2")
    return specs


def parse_rows(rows: str | Iterable[str], stem: str = "deep", substitute: str | None = None) -> list[ModelSpec]:
    """``"all"`` or ``["encnet/resnet50/jpu", ...]`` (head/paper backbone/upsampling) -> specs."""
    if rows == "all":
        return table2_specs(stem=stem, substitute=substitute)
    out = []
    for row in [rows] if isinstance(rows, str) else rows:
        parts = row.split("/")
        if len(parts) != 3:
            raise ValueError(f"a row is 'head/backbone/upsampling' (e.g. 'encnet/resnet50/jpu'), got {row!r}")
        if not any((r.head, r.backbone, r.upsampling) == tuple(parts) for r in paper.TABLE2):
            raise ValueError(f"{row!r} is not a row of Table 2")
        out += table2_specs([parts[1]], [parts[0]], [parts[2]], stem=stem, substitute=substitute)
    return out


def torchvision_specs(names: Iterable[str] | None = TORCHVISION_MODELS) -> list[ModelSpec]:
    """torchvision's dilated (output stride 8) segmentation models, built with ``weights=None``."""
    names = check_choices("torchvision model", names, TORCHVISION_MODELS) or []
    return [ModelSpec("torchvision", n, "deeplabv3" if n.startswith("deeplab") else "fcn",
                      n.rsplit("_", 1)[1], "none", None) for n in names]


def dilated_jpu_spec(head: str = "encnet", paper_backbone: str = "resnet50", upsampling: str = "jpu",
                     stem: str = "deep", substitute: str | None = None) -> ModelSpec:
    """JPU (or FPN/bilinear) on a *dilated* output-stride-8 trunk: what a port that keeps the dilated
    backbone computes. C3, C4 and C5 are then all at 1/8 of the input."""
    check_choices("head", [head], HEADS)
    check_choices("upsampling", [upsampling], ("bilinear", "fpn", "jpu"))
    return ModelSpec("fastfcn", f"{head}/{upsampling}+dilated", head, _our_backbone(paper_backbone, stem, substitute),
                     upsampling, paper_backbone, dilated_backbone=True)


def spec_fields(spec: ModelSpec) -> dict[str, Any]:
    """The spec as the flat fields every result row carries."""
    return {"name": spec.name, "kind": spec.kind, "head": spec.head, "backbone": spec.backbone,
            "upsampling": spec.upsampling, "paper_backbone": spec.paper_backbone,
            "dilated_backbone": spec.dilated_backbone, "output_stride": spec.output_stride}
