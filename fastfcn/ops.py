"""The split, merge and reduce operators of Section 3.3 (Fig. 3, Eq. 2 and 3).

A dilated convolution with rate ``r`` never mixes positions whose indices differ modulo ``r``:
it is the same regular convolution applied to each of the ``r`` interleaved sub-sequences.
``split`` (S) takes those sub-sequences apart, ``merge`` (M) interleaves them back, and ``reduce``
(R) keeps only the first one, which is what a stride-``r`` convolution does after a regular one.

Tensors are ``(N, C, L)`` for 1D and ``(N, C, H, W)`` for 2D; every function works on both and on
odd lengths.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

__all__ = ["split", "merge", "reduce", "conv_same"]


def _spatial_dims(x: Tensor, name: str = "x") -> int:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (3, 4):
        raise ValueError(
            f"{name} must be (N, C, L) for 1D or (N, C, H, W) for 2D, got shape {tuple(x.shape)}; "
            "add batch and channel axes with x[None, None] if needed"
        )
    return x.dim() - 2


def _check_rate(rate: int) -> None:
    if not isinstance(rate, int) or rate < 1:
        raise ValueError(f"rate must be a positive integer, got {rate!r}")


def split(x: Tensor, rate: int = 2) -> list[Tensor]:
    """S: the ``rate`` (1D) or ``rate**2`` (2D) interleaved sub-maps of ``x``.

    Group ``i`` (1D) holds positions ``i, i + rate, i + 2 rate, ...``; in 2D the groups are
    ordered row-major by (row offset, column offset). Group 0 is ``reduce(x, rate)``.
    """
    _check_rate(rate)
    dims = _spatial_dims(x)
    offsets = itertools.product(range(rate), repeat=dims)
    if dims == 1:
        return [x[..., i::rate] for (i,) in offsets]
    return [x[..., i::rate, j::rate] for i, j in offsets]


def merge(groups: list[Tensor] | tuple[Tensor, ...], rate: int = 2) -> Tensor:
    """M: interleave the groups made by :func:`split` back into one map (inverse of ``split``)."""
    _check_rate(rate)
    groups = list(groups)
    if not groups:
        raise ValueError("merge needs at least one group")
    dims = _spatial_dims(groups[0], "groups[0]")
    expected = rate**dims
    if len(groups) != expected:
        raise ValueError(f"merge with rate {rate} in {dims}D needs {expected} groups, got {len(groups)}")
    lead = groups[0].shape[:2]
    for k, g in enumerate(groups):
        _spatial_dims(g, f"groups[{k}]")
        if g.shape[:2] != lead:
            raise ValueError(f"groups[{k}] has batch/channel shape {tuple(g.shape[:2])}, expected {tuple(lead)}")
    if dims == 1:
        length = sum(g.shape[-1] for g in groups)
        out = groups[0].new_zeros(*lead, length)
        for i, g in enumerate(groups):
            if g.shape[-1] != len(range(i, length, rate)):
                raise ValueError(f"groups[{i}] has length {g.shape[-1]}, which split() cannot produce")
            out[..., i::rate] = g
        return out
    height = sum(groups[i * rate].shape[-2] for i in range(rate))
    width = sum(groups[j].shape[-1] for j in range(rate))
    out = groups[0].new_zeros(*lead, height, width)
    for k, (i, j) in enumerate(itertools.product(range(rate), repeat=2)):
        want = (len(range(i, height, rate)), len(range(j, width, rate)))
        if tuple(groups[k].shape[-2:]) != want:
            raise ValueError(f"groups[{k}] has size {tuple(groups[k].shape[-2:])}, expected {want}")
        out[..., i::rate, j::rate] = groups[k]
    return out


def reduce(x: Tensor, rate: int = 2) -> Tensor:
    """R: keep the positions whose indices are multiples of ``rate`` (drop the odd ones for rate 2)."""
    _check_rate(rate)
    dims = _spatial_dims(x)
    return x[..., ::rate] if dims == 1 else x[..., ::rate, ::rate]


def conv_same(x: Tensor, weight: Tensor, dilation: int = 1, stride: int = 1) -> Tensor:
    """A zero-padded 'same' convolution (odd kernel), 1D or 2D, as used in the equivalences."""
    dims = _spatial_dims(x)
    k = weight.shape[-1]
    if k % 2 != 1:
        raise ValueError(f"conv_same needs an odd kernel size, got {k}")
    pad = dilation * (k - 1) // 2
    fn = torch.nn.functional.conv1d if dims == 1 else torch.nn.functional.conv2d
    return fn(x, weight, padding=pad, dilation=dilation, stride=stride)
