"""Fig. 4 of the paper (the JPU module) drawn from the shapes of a real forward pass.

:func:`fig4_shapes` runs a FastFCN model with JPU once and catches, with forward hooks, the shape of
every tensor the figure shows: the backbone's C3, C4 and C5, their embeddings (Fig. 4a), the
fused ``y_c`` (Fig. 4b), the output of each dilated separable branch and their concatenation,
and the output of the head's first convolution, the "regular convolution block" that closes
Fig. 4c. :func:`draw_fig4` draws boxes and arrows labelled with exactly those shapes and returns
them, so a test can compare the labels with the module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["fig4_shapes", "draw_fig4"]

Shape = tuple[int, ...]  # (C, H, W) of one image

C_INPUT, C_EMBED, C_FUSED, C_BRANCH, C_OUT = "#9ecae1", "#fdd0a2", "#c7e9c0", "#fcbba1", "#dadaeb"


def _first_conv(module: nn.Module) -> nn.Conv2d:
    conv = next((m for m in module.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ValueError(f"{type(module).__name__} has no convolution to draw as Fig. 4c's last block")
    return conv


@torch.no_grad()
def fig4_shapes(model: nn.Module, image: Tensor) -> dict[str, Shape]:
    """Shapes ``(C, H, W)`` of the tensors of Fig. 4, caught with forward hooks during one pass of ``model``.

    ``model`` is a FastFCN model with JPU (``build_model(..., upsampling="jpu")``); ``image`` one batch
    ``(1, 3, H, W)``. Keys: ``C3``..``C5`` (backbone), ``embed3``..``embed5`` (Fig. 4a), ``resized4``,
    ``resized5`` (the embedded C4, C5 at C3's size), ``y_c`` (Fig. 4b), ``rate1``.. (one per dilation),
    ``jpu`` (their concatenation) and ``head_conv`` (the head's first convolution, Fig. 4c).
    """
    jpu = getattr(model, "upsample", None)
    if jpu is None or not hasattr(jpu, "dilations"):
        raise ValueError("Fig. 4 needs a model with JPU: build_model(..., upsampling='jpu')")
    seen: dict[str, Shape] = {}

    def keep(name: str, inputs: bool = False):
        def hook(_module, args, out):
            seen[name] = tuple((args[0] if inputs else out).shape[1:])
        return hook

    taps = [(model.backbone.layer2, "C3", False), (model.backbone.layer3, "C4", False),
            (model.backbone.layer4, "C5", False), (jpu.conv3, "embed3", False), (jpu.conv4, "embed4", False),
            (jpu.conv5, "embed5", False), (jpu.dilations[0], "y_c", True), (jpu, "jpu", False),
            (_first_conv(model.head), "head_conv", False)]
    taps += [(branch, f"rate{branch.dilation}", False) for branch in jpu.dilations]
    handles = [module.register_forward_hook(keep(name, inputs)) for module, name, inputs in taps]
    was_training = model.training
    try:
        model.eval()
        model(image, with_aux=False)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    # the resizing is a function call, not a module: its output has the embedding's channels on y_c's grid
    for k in ("4", "5"):
        seen[f"resized{k}"] = (seen[f"embed{k}"][0], *seen["y_c"][1:])
    return seen


def _label(shape: Shape) -> str:
    return " x ".join(str(s) for s in shape)


def _box(ax: Axes, x: float, y: float, title: str, shape: Shape, colour: str, width: float = 1.7,
         height: float = 0.72) -> tuple[float, float, float, float]:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.02",
                                facecolor=colour, edgecolor="black", linewidth=0.8))
    ax.text(x, y + 0.13, title, ha="center", va="center", fontsize=9)
    ax.text(x, y - 0.17, _label(shape), ha="center", va="center", fontsize=8.5, family="monospace")
    return x - width / 2, x + width / 2, y - height / 2, y + height / 2


def _arrow(ax: Axes, a: tuple[float, float], b: tuple[float, float], label: str | None = None) -> None:
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=9, linewidth=0.8, color="0.25",
                                 shrinkA=0, shrinkB=0))
    if label:
        ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.12, label, ha="center", va="bottom", fontsize=7,
                color="0.25")


def draw_fig4(model: nn.Module, image: Tensor) -> tuple[Figure, dict[str, Shape]]:
    """Fig. 4 (JPU) for ``model`` on ``image``: boxes labelled with the shapes :func:`fig4_shapes` caught.

    Returns the figure and the shapes drawn, ``{key: (C, H, W)}`` with the keys of :func:`fig4_shapes`.
    """
    import matplotlib.pyplot as plt

    shapes = fig4_shapes(model, image)
    rates = sorted(int(k[4:]) for k in shapes if k.startswith("rate"))
    fig, ax = plt.subplots(figsize=(13, 4.6))
    rows = {"5": 1.3, "4": 0.0, "3": -1.3}  # the deepest map on top, as in the paper's figure
    x_in, x_emb, x_res, x_cat, x_br, x_out, x_head = 0.0, 2.3, 4.6, 6.9, 9.2, 11.5, 13.8
    cat = _box(ax, x_cat, 0.0, "concat: y_c", shapes["y_c"], C_FUSED, width=1.6, height=1.1)
    for k, y in rows.items():
        r_in = _box(ax, x_in, y, f"Conv{k} (C{k})", shapes[f"C{k}"], C_INPUT)
        r_emb = _box(ax, x_emb, y, "conv 3x3, BN, ReLU", shapes[f"embed{k}"], C_EMBED)
        _arrow(ax, (r_in[1], y), (r_emb[0], y))
        end = (r_emb[1], y)
        if k != "3":  # C4 and C5 are resized to C3's grid; C3 already is on it
            r_res = _box(ax, x_res, y, "upsample (bilinear)", shapes[f"resized{k}"], C_EMBED)
            _arrow(ax, end, (r_res[0], y))
            end = (r_res[1], y)
        _arrow(ax, end, (cat[0], 0.3 * ((y > 0) - (y < 0))))
    out = _box(ax, x_out, 0.0, "concat: JPU output", shapes["jpu"], C_FUSED, width=1.7, height=1.1)
    step = 2.6 / max(len(rates) - 1, 1)
    for i, rate in enumerate(rates):
        y = 1.3 - i * step
        r = _box(ax, x_br, y, f"separable conv, d={rate}", shapes[f"rate{rate}"], C_BRANCH, width=1.9, height=0.6)
        _arrow(ax, (cat[1], 0.0), (r[0], y))
        _arrow(ax, (r[1], y), (out[0], 0.25 * ((y > 0) - (y < 0))))
    head = _box(ax, x_head, 0.0, "head's first conv", shapes["head_conv"], C_OUT)
    _arrow(ax, (out[1], 0.0), (head[0], 0.0))
    # the paper's three parts: (a) the convolutions, (b) upsampling and concatenation, (c) the dilated
    # separable convolutions and the convolution after them (here the head's first)
    for x, tag in ((x_emb, "(a)"), ((x_res + x_cat) / 2, "(b)"), ((x_br + x_head) / 2, "(c)")):
        ax.text(x, 2.05, tag, ha="center", va="center", fontsize=12, weight="bold")
    ax.set_xlim(-1.0, x_head + 1.0)
    ax.set_ylim(-1.8, 2.3)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("Fig. 4 (JPU) from one forward pass: every label is the shape (C x H x W) a forward hook caught",
                 fontsize=12)
    fig.tight_layout()
    return fig, shapes
