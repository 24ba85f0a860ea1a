"""JPU's depthwise convolutions dilated by 8, run split into sub-images (Section 3.3's split/merge): the same
function as the dilated convolution, on sides the dilation divides and on sides it does not."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fastfcn.inference.fast_path import optimize
from fastfcn.inference.split_depthwise import (
    SplitDilatedDepthwise,
    split_dilated_depthwise,
    split_large_dilations,
    to_channels_last,
)
from fastfcn.models import build_model
from fastfcn.ops import merge, split


@pytest.mark.parametrize("size", [(16, 16), (13, 21), (7, 9)])
@pytest.mark.parametrize("dilation", [2, 8])
@pytest.mark.parametrize("channels_last", [False, True])
def test_split_equals_the_dilated_convolution(size: tuple[int, int], dilation: int, channels_last: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 6, 3, padding=dilation, dilation=dilation, groups=6, bias=True)
    x = torch.randn(2, 6, *size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want, got = conv(x), split_dilated_depthwise(x, conv)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert got.is_contiguous(memory_format=torch.channels_last)


def test_only_depthwise_3x3_convolutions_dilated_enough_are_replaced() -> None:
    model = nn.Sequential(nn.Conv2d(4, 4, 3, padding=8, dilation=8, groups=4),   # replaced
                          nn.Conv2d(4, 4, 3, padding=4, dilation=4, groups=4),   # dilation below the threshold
                          nn.Conv2d(4, 4, 3, padding=8, dilation=8),             # not depthwise
                          nn.Conv2d(4, 4, 3, padding=8, dilation=8, groups=4, stride=2))  # strided
    assert split_large_dilations(model) == 1
    assert [type(m).__name__ for m in model] == ["SplitDilatedDepthwise", "Conv2d", "Conv2d", "Conv2d"]
    with pytest.raises(ValueError, match="not a depthwise 3x3"):
        SplitDilatedDepthwise(model[2])


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_to_channels_last_splits_on_the_cpu_only(device: str) -> None:
    # the device is only read, never used: the module stays on the CPU either way
    model = nn.Sequential(nn.Conv2d(4, 4, 3, padding=8, dilation=8, groups=4), nn.Conv2d(4, 8, 3, padding=1))
    assert to_channels_last(model, device) is model
    kinds = [type(m).__name__ for m in model]
    assert kinds == (["SplitDilatedDepthwise", "Conv2d"] if device == "cpu" else ["Conv2d", "Conv2d"])
    assert model[1].weight.is_contiguous(memory_format=torch.channels_last)


def test_the_channels_last_path_splits_jpus_dilation_8_and_keeps_the_output() -> None:
    torch.manual_seed(0)
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=5, jpu_width=16).eval()
    x = torch.randn(1, 3, 72, 88)  # C3 at 9x11: a side dilation 8 does not divide
    fast = optimize(model, "channels_last+fold_bn", example=x)
    split = [m for m in fast.modules() if isinstance(m, SplitDilatedDepthwise)]
    assert len(split) == 1 and split[0].conv.dilation == (8, 8)   # JPU's branches dilate by 1, 2, 4, 8
    assert not any(isinstance(m, SplitDilatedDepthwise) for m in optimize(model, "fold_bn", example=x).modules())
    with torch.no_grad():
        want, got = model(x, with_aux=False)["out"], fast(x)["out"]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


def test_the_batched_split_is_section_3_3s_split_convolve_merge() -> None:
    """The fast path's split is the paper's S and M (``fastfcn.ops``, chapter 3) done in one copy each way: each
    sub-map convolved without dilation, then merged, gives the same map."""
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 4, 3, padding=8, dilation=8, groups=4, bias=True)
    x = torch.randn(1, 4, 24, 32)
    with torch.no_grad():
        by_ops = merge([nn.functional.conv2d(g, conv.weight, conv.bias, padding=1, groups=4) for g in split(x, 8)], 8)
        torch.testing.assert_close(split_dilated_depthwise(x, conv), by_ops, rtol=1e-5, atol=1e-6)
