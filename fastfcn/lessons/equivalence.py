"""Chapter 3's plumbing and references: Eq. 2 and 3 of the paper, and ``y_s = R(y_d)`` on a whole ResNet.

Section 3.3.2 rewrites the output of a dilated stage, ``y_d``, and of a strided stage, ``y_s``,
until both read "the same ``n`` regular convolutions ``C_r^n``, applied to different inputs":
``y_d = M(C_r^n(S(y_m)))`` and ``y_s = C_r^n(R(y_m))`` with ``y_m = C_r(x)``.

Chapter 3 writes that line-by-line evaluation itself, in visible cells (``eq2`` and ``eq3``).
:func:`eq2_lines` and :func:`eq3_lines` are the *reference* it is checked against, to float
tolerance, and what tests/test_ops.py checks property by property (every line agrees with the
first to float rounding; train-mode BatchNorm breaks ``y_s = R(y_d)``). The rest is plumbing:
random kernels (:func:`random_weights`), the error of each line (:func:`max_abs_errors`) and the
whole-backbone check (:func:`backbone_subsampling_errors`), which builds two ResNets.

A "layer" here is a zero-padded 'same' convolution followed by an optional pointwise function
(ReLU, an eval-mode BatchNorm, ...). Pointwise functions commute with split, merge and reduce,
so the equalities hold with them; anything that mixes positions (train-mode BatchNorm, whose
statistics are taken over all positions) does not commute and breaks them.
Tensors are ``(N, C, L)`` (1D) or ``(N, C, H, W)`` (2D).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..models.resnet import build_resnet
from ..ops import conv_same, merge, reduce, split

__all__ = ["Pointwise", "EQ2_LINES", "EQ3_LINES", "eq2_lines", "eq3_lines", "random_weights", "max_abs_errors",
           "backbone_subsampling_errors", "backbone_subsampling_error"]

Pointwise = Callable[[Tensor], Tensor]

EQ2_LINES = (
    "x -> C_r -> C_d^n",
    "x -> C_r -> (S C_r M)^n",
    "x -> C_r -> S -> C_r^n -> M",
    "y_m -> S -> C_r^n -> M",
    "{y_m^0, y_m^1} -> C_r^n -> M",
)
EQ3_LINES = (
    "x -> C_s -> C_r^n",
    "x -> C_r -> R -> C_r^n",
    "y_m^0 -> C_r^n",
)


def _layer(x: Tensor, weight: Tensor, dilation: int = 1, stride: int = 1, act: Pointwise | None = None) -> Tensor:
    """One layer: zero-padded 'same' convolution, then the pointwise ``act`` (if any)."""
    y = conv_same(x, weight, dilation=dilation, stride=stride)
    return y if act is None else act(y)


def _chain(x: Tensor, weights: Sequence[Tensor], dilation: int = 1, act: Pointwise | None = None) -> Tensor:
    """``C^n``: the layers with ``weights`` one after the other (all with the same dilation)."""
    for w in weights:
        x = _layer(x, w, dilation=dilation, act=act)
    return x


def random_weights(n: int, channels: int = 1, kernel_size: int = 3, dims: int = 1,
                   generator: torch.Generator | None = None) -> list[Tensor]:
    """``n + 1`` random kernels: the first regular ``C_r`` (or ``C_s``) and the ``n`` that follow."""
    if n < 0 or channels < 1 or kernel_size < 1 or kernel_size % 2 == 0 or dims not in (1, 2):
        raise ValueError(f"need n >= 0, channels >= 1, an odd kernel_size and dims 1 or 2, "
                         f"got n={n}, channels={channels}, kernel_size={kernel_size}, dims={dims}")
    shape = (channels, channels) + (kernel_size,) * dims
    scale = (channels * kernel_size**dims) ** -0.5
    return [torch.randn(shape, generator=generator) * scale for _ in range(n + 1)]


def _groups_by_shift(y: Tensor, rate: int) -> list[Tensor]:
    """The split groups computed another way: shift the map by each offset, then reduce."""
    dims = y.dim() - 2
    if dims == 1:
        return [reduce(y[..., i:], rate) for i in range(rate)]
    return [reduce(y[..., i:, j:], rate) for i, j in itertools.product(range(rate), repeat=2)]


def eq2_lines(x: Tensor, weights: Sequence[Tensor], act: Pointwise | None = None, rate: int = 2) -> list[Tensor]:
    """Every line of Eq. 2 (dilated stage), evaluated as written; see :data:`EQ2_LINES`.

    The reference for chapter 3's ``eq2``; unlike it, any ``rate`` and ``act=None`` are allowed.

    ``weights[0]`` is the regular convolution ``C_r`` that opens the stage, ``weights[1:]`` the
    ``n`` convolutions that are dilated (rate ``rate``) in DilatedFCN.
    """
    first, rest = weights[0], list(weights[1:])
    y_m = _layer(x, first, act=act)
    line1 = _chain(y_m, rest, dilation=rate, act=act)
    line2 = y_m
    for w in rest:
        line2 = merge([_layer(g, w, act=act) for g in split(line2, rate)], rate)
    line3 = merge([_chain(g, rest, act=act) for g in split(_layer(x, first, act=act), rate)], rate)
    line4 = merge([_chain(g, rest, act=act) for g in split(y_m, rate)], rate)
    line5 = merge([_chain(g, rest, act=act) for g in _groups_by_shift(y_m, rate)], rate)
    return [line1, line2, line3, line4, line5]


def eq3_lines(x: Tensor, weights: Sequence[Tensor], act: Pointwise | None = None, rate: int = 2) -> list[Tensor]:
    """Every line of Eq. 3 (strided stage), evaluated as written; see :data:`EQ3_LINES`.

    The reference for chapter 3's ``eq3``; unlike it, any ``rate`` and ``act=None`` are allowed.

    ``weights[0]`` is the convolution that is strided (stride ``rate``) in the plain backbone,
    ``weights[1:]`` the ``n`` regular convolutions after it.
    """
    first, rest = weights[0], list(weights[1:])
    line1 = _chain(_layer(x, first, stride=rate, act=act), rest, act=act)
    y_m = _layer(x, first, act=act)
    line2 = _chain(reduce(y_m, rate), rest, act=act)
    line3 = _chain(split(y_m, rate)[0], rest, act=act)
    return [line1, line2, line3]


def max_abs_errors(lines: Sequence[Tensor]) -> list[float]:
    """Largest absolute difference of each line from the first one (0 for the first)."""
    return [float((t - lines[0]).abs().max()) if t.shape == lines[0].shape else float("inf") for t in lines]


@torch.no_grad()
def _shared_weight_trunks(name: str, seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A plain and a dilated trunk with the *same* weights; BatchNorm with random statistics and affine
    parameters, so that it is not the identity."""
    torch.manual_seed(seed)
    plain = build_resnet(name, output_stride=32)
    for m in plain.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.normal_()
            m.bias.normal_()
    dilated = build_resnet(name, output_stride=8)
    dilated.load_state_dict(plain.state_dict())
    return plain, dilated


def backbone_subsampling_errors(name: str = "resnet18", cases: Sequence[tuple[int, bool]] = ((64, False),),
                                seed: int = 0) -> list[dict[str, float]]:
    """Check ``y_s = R(y_d)`` on a whole ResNet: plain and dilated trunks with the *same* weights.

    One pair of trunks (built once) is run on a random input for each ``(input_size, train_bn)`` case.
    Returns, per case and for C2..C5, the largest absolute difference between the plain trunk's map and the
    dilated trunk's (C4 and C5 of the dilated trunk subsampled by 2 and 4), divided by the largest magnitude
    of the plain map: float rounding gives about 1e-6. With ``train_bn=True`` BatchNorm normalises with the
    statistics of the batch, which are taken over different sets of positions in the two trunks, and the
    equality no longer holds; the running statistics it updates are reset after the case, so the cases
    that follow start from the same shared weights.
    """
    plain, dilated = _shared_weight_trunks(name, seed)
    shared_buffers = {k: v.clone() for k, v in plain.named_buffers()}  # all that a forward pass changes
    results = []
    for input_size, train_bn in cases:
        plain.train(train_bn)
        dilated.train(train_bn)
        x = torch.randn(1, 3, input_size, input_size)
        with torch.no_grad():
            pairs = zip(("c2", "c3", "c4", "c5"), plain(x), dilated(x), (1, 1, 2, 4), strict=True)
            out = {}
            for level, ys, yd, rate in pairs:
                sub = reduce(yd, rate)
                if sub.shape != ys.shape:
                    raise RuntimeError(f"{level}: plain {tuple(ys.shape)} vs subsampled dilated {tuple(sub.shape)}")
                out[level] = float((ys - sub).abs().max() / ys.abs().max().clamp_min(1e-12))
        if train_bn:  # the pass updated each trunk's running statistics, differently: share them again
            plain.load_state_dict(shared_buffers, strict=False)
            dilated.load_state_dict(shared_buffers, strict=False)
        results.append(out)
    return results


def backbone_subsampling_error(name: str = "resnet18", input_size: int = 64, seed: int = 0,
                               train_bn: bool = False) -> dict[str, float]:
    """:func:`backbone_subsampling_errors` for one input size and BatchNorm mode."""
    return backbone_subsampling_errors(name, [(input_size, train_bn)], seed)[0]
