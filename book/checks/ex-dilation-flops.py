"""Checks of ex-dilation-flops (chapter 2): the FLOPs of a 3x3 convolution, dilated or not, and of a 5x5 one."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-dilation-flops"


def _answered(**answers):
    missing = [key for key, value in answers.items() if not isinstance(value, (int, float))]
    assert not missing, f"no answer yet: set {', '.join(missing)} to a number (FLOPs, not GFLOPs)"


@test_case(points=1)
def dilation_adds_no_taps(flops_dilation_1, flops_dilation_2, flops_5x5):
    _answered(flops_dilation_1=flops_dilation_1, flops_dilation_2=flops_dilation_2, flops_5x5=flops_5x5)
    assert flops_dilation_1 == flops_dilation_2, (
        "the two 3x3 convolutions should cost the same: dilation spreads the 9 taps apart but adds none, "
        "and zero padding keeps the output map 64x64 in both")
    assert abs(flops_5x5 / flops_dilation_2 - 25 / 9) < 1e-9, (
        "a 5x5 kernel has 25 taps where the 3x3 has 9, on the same output map: its cost is 25/9 times larger")


@test_case(points=1, hidden=True)
def flops_of_one_convolution(flops_dilation_1):
    _answered(flops_dilation_1=flops_dilation_1)
    expected = 2 * 64 * 64 * 256 * 256 * 9
    assert flops_dilation_1 != expected / 2, (
        "this is the number of multiply-adds: the book counts one multiply-add as 2 FLOPs")
    assert abs(flops_dilation_1 / expected - 1) < 0.01, (
        "FLOPs = 2 * H * W * C_in * C_out * k^2, with the output map's H and W (64x64) and k^2 = 9 taps")
