"""Checks of ex-rate-three (chapter 3): split, a shared regular convolution and merge, at dilation rate 3."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-rate-three"


@test_case(points=1)
def split_conv_merge_equals_dilated_conv(dilated_by_split):
    import torch

    from fastfcn.ops import conv_same

    assert callable(dilated_by_split), (
        "no answer yet: define dilated_by_split(x, w, rate) that splits x, convolves every group with w and merges")
    torch.manual_seed(0)
    w = torch.randn(2, 2, 3)
    for length in (10, 11, 12):
        x = torch.randn(1, 2, length)
        got = dilated_by_split(x, w, 3)
        assert got is not None, "no answer yet: dilated_by_split returns None; return the merged tensor"
        assert got.shape == x.shape, f"length {length}: the result should have the input's shape {tuple(x.shape)}"
        error = (got - conv_same(x, w, dilation=3)).abs().max().item()
        regular = (got - conv_same(x, w)).abs().max().item()
        assert not (error > 1e-5 and regular < 1e-5), (
            f"length {length}: this is the regular convolution: split and merge with rate=3 (the default is 2)")
        assert error < 1e-5, (
            f"length {length}: differs from conv_same(x, w, dilation=3) by {error:.2g}. Inside one group the "
            "taps are neighbours, so the shared convolution has dilation 1; split and merge both need rate=3")


@test_case(points=1, hidden=True)
def number_of_groups(groups_1d, groups_2d):
    assert groups_1d is not None and groups_2d is not None, "no answer yet: set groups_1d and groups_2d"
    assert groups_1d == 3, "in 1D split groups the positions by their index modulo the rate: 3 groups for rate 3"
    assert groups_2d == 9, "in 2D a group is a pair (row mod 3, column mod 3): 3 x 3 groups, not 3 + 3"
