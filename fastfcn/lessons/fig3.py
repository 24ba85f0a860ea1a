"""Fig. 3 of the paper redrawn from real tensors: dilated and stride convolution in 1D.

(a) dilated convolution (rate 2) = split the input by parity -> one shared regular convolution on
each group -> merge the two outputs interlaced; (b) stride convolution (stride 2) = regular
convolution -> reduce (drop the odd positions). Every number drawn is computed with
:mod:`fastfcn.ops`, and the panels report how far they are from ``torch``'s own dilated / strided
convolution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..ops import conv_same, merge, reduce, split

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["fig3_tensors", "draw_fig3"]

EVEN, ODD, DROPPED = "#9ecae1", "#fdae6b", "#e0e0e0"
ROW_GAP = 1.6


@torch.no_grad()
def fig3_tensors(x: Tensor, weight: Tensor) -> dict[str, Tensor]:
    """All intermediate 1D tensors of Fig. 3 for an input ``x`` (length L) and a kernel ``weight``.

    ``x`` may be ``(L,)`` or ``(1, 1, L)``; ``weight`` ``(k,)`` or ``(1, 1, k)`` with odd ``k``.
    Returned tensors are flat ``(length,)``; ``*_torch`` are torch's own dilated/strided results.
    """
    x3 = x.reshape(1, 1, -1).float()
    w3 = weight.reshape(1, 1, -1).float()
    f_in0, f_in1 = split(x3)
    f_out0, f_out1 = conv_same(f_in0, w3), conv_same(f_in1, w3)
    f_m = conv_same(x3, w3)
    out = {
        "f_in": x3, "f_in0": f_in0, "f_in1": f_in1, "f_out0": f_out0, "f_out1": f_out1,
        "dilated": merge([f_out0, f_out1]), "dilated_torch": conv_same(x3, w3, dilation=2),
        "f_m": f_m, "strided": reduce(f_m), "strided_torch": conv_same(x3, w3, stride=2),
    }
    return {k: v.flatten() for k, v in out.items()}


def _row(ax: Axes, values: Tensor, y: float, x0: float, colors: list[str], label: str | None = None,
         label_left: bool = True) -> list[float]:
    from matplotlib.patches import Rectangle

    centers = []
    for i, (v, c) in enumerate(zip(values.tolist(), colors, strict=True)):
        ax.add_patch(Rectangle((x0 + i - 0.45, y - 0.4), 0.9, 0.8, facecolor=c, edgecolor="k", lw=0.8))
        ax.text(x0 + i, y, f"{v:g}", ha="center", va="center", fontsize=8)
        centers.append(x0 + i)
    if label:
        if label_left:
            ax.text(x0 - 0.8, y, label, ha="right", va="center", fontsize=9)
        else:
            ax.text(x0 + len(centers) - 0.2, y, label, ha="left", va="center", fontsize=9)
    return centers


def _link(ax: Axes, xa: float, ya: float, xb: float, yb: float, color: str = "0.4", lw: float = 0.7) -> None:
    ax.plot([xa, xb], [ya - 0.42, yb + 0.42], color=color, lw=lw, zorder=0)


def _parity(n: int, start: int = 0) -> list[str]:
    return [EVEN if (start + i) % 2 == 0 else ODD for i in range(n)]


def _draw_dilated(ax: Axes, t: dict[str, Tensor], k: int) -> None:
    n = t["f_in"].numel()
    n0, n1 = t["f_in0"].numel(), t["f_in1"].numel()
    y_in, y_split, y_conv, y_out = 3 * ROW_GAP, 2 * ROW_GAP, ROW_GAP, 0.0
    gap = 1.5
    xs_in = _row(ax, t["f_in"], y_in, 0, _parity(n), r"$f_{in}$")
    xs0 = _row(ax, t["f_in0"], y_split, 0, [EVEN] * n0, r"$f_{in}^0$")
    xs1 = _row(ax, t["f_in1"], y_split, n0 + gap, [ODD] * n1, r"$f_{in}^1$", label_left=False)
    ys0 = _row(ax, t["f_out0"], y_conv, 0, [EVEN] * n0, r"$f_{out}^0$")
    ys1 = _row(ax, t["f_out1"], y_conv, n0 + gap, [ODD] * n1, r"$f_{out}^1$", label_left=False)
    xs_out = _row(ax, t["dilated"], y_out, 0, _parity(n), r"$f_{out}$")
    for i, xi in enumerate(xs_in):  # S
        _link(ax, xi, y_in, (xs0 if i % 2 == 0 else xs1)[i // 2], y_split)
    for i, xo in enumerate(xs_out):  # M
        _link(ax, (ys0 if i % 2 == 0 else ys1)[i // 2], y_conv, xo, y_out)
    # taps of the same kernel, once in each group
    half = k // 2
    for xs, ys, j in ((xs0, ys0, n0 // 2), (xs1, ys1, n1 // 2)):
        for d in range(-half, half + 1):
            if 0 <= j + d < len(xs):
                _link(ax, xs[j + d], y_split, ys[j], y_conv, color="C3", lw=1.3)
    ax.text((n0 + gap / 2) - 0.5, (y_split + y_conv) / 2, "shared $C_r$", ha="center", va="center",
            fontsize=9, color="C3", bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    err = float((t["dilated"] - t["dilated_torch"]).abs().max())
    ax.set_title(f"(a) dilated conv, rate 2 = S, shared $C_r$, M\n"
                 f"max |M(C_r(S(x))) - conv(x, dilation=2)| = {err:g}", fontsize=10)
    ax.text(-0.8, (y_in + y_split) / 2, "S", ha="right", va="center", fontsize=10, weight="bold")
    ax.text(-0.8, (y_conv + y_out) / 2, "M", ha="right", va="center", fontsize=10, weight="bold")
    ax.set_xlim(-3.5, n0 + gap + n1 + 2.5)


def _draw_strided(ax: Axes, t: dict[str, Tensor], k: int) -> None:
    n = t["f_in"].numel()
    y_in, y_m, y_out = 3 * ROW_GAP, 2 * ROW_GAP - 0.3, ROW_GAP - 0.6
    xs_in = _row(ax, t["f_in"], y_in, 0, _parity(n), r"$f_{in}$")
    xs_m = _row(ax, t["f_m"], y_m, 0, [EVEN if i % 2 == 0 else DROPPED for i in range(n)], r"$f_m$")
    offset = (n - t["strided"].numel()) / 2
    xs_out = _row(ax, t["strided"], y_out, offset, [EVEN] * t["strided"].numel(), r"$f_{out}$")
    half = k // 2
    j = 2 * (n // 4)
    for d in range(-half, half + 1):
        if 0 <= j + d < n:
            _link(ax, xs_in[j + d], y_in, xs_m[j], y_m, color="C3", lw=1.3)
    ax.text(n + 0.2, (y_in + y_m) / 2, "regular $C_r$", ha="left", va="center", fontsize=9, color="C3")
    for i in range(0, n, 2):  # R
        _link(ax, xs_m[i], y_m, xs_out[i // 2], y_out)
    for i in range(1, n, 2):
        ax.plot([xs_m[i] - 0.3, xs_m[i] + 0.3], [y_m - 0.3, y_m + 0.3], color="0.3", lw=1)
    err = float((t["strided"] - t["strided_torch"]).abs().max())
    ax.set_title(f"(b) stride conv, stride 2 = $C_r$, then R\n"
                 f"max |R(C_r(x)) - conv(x, stride=2)| = {err:g}", fontsize=10)
    ax.text(-0.8, (y_m + y_out) / 2, "R", ha="right", va="center", fontsize=10, weight="bold")
    ax.set_xlim(-3.5, n + 3.5)


def draw_fig3(x: Tensor, weight: Tensor) -> Figure:
    """Fig. 3 from real numbers: (a) dilated conv as split/conv/merge, (b) stride conv as conv/reduce.

    The red lines show the taps of one output of the shared kernel; grey lines carry values through
    split (S), merge (M) and reduce (R); struck-out cells of ``f_m`` are the ones R drops.
    """
    import matplotlib.pyplot as plt

    if weight.numel() % 2 != 1:
        raise ValueError(f"the kernel needs an odd number of taps, got {weight.numel()}")
    t = fig3_tensors(x, weight)
    n = t["f_in"].numel()
    fig, axes = plt.subplots(1, 2, figsize=(max(10.0, 1.25 * n + 3), 4.2),
                             gridspec_kw={"width_ratios": [n + 6, n + 4]})
    _draw_dilated(axes[0], t, weight.numel())
    _draw_strided(axes[1], t, weight.numel())
    for ax in axes:
        ax.set_ylim(-0.8, 3 * ROW_GAP + 0.8)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.tight_layout()
    return fig

