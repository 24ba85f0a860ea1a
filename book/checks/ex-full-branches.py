"""Checks of ex-full-branches (chapter 5): one ordinary 3x3 branch from 3w to w channels, w = 512, on 64x64."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-full-branches"


def _answered(**answers):
    missing = [key for key, value in answers.items() if not isinstance(value, (int, float))]
    assert not missing, f"no answer yet: set {', '.join(missing)} to a number (for one branch)"


@test_case(points=1)
def macs_are_params_times_positions(full_branch_params, full_branch_gmacs):
    _answered(full_branch_params=full_branch_params, full_branch_gmacs=full_branch_gmacs)
    assert abs(full_branch_gmacs * 1e9 / (full_branch_params * 64 * 64) - 1) < 0.01, (
        "a convolution without bias does one multiply-add per weight at every output position: "
        "MACs = parameters x 64 x 64 (and GMACs = MACs / 1e9)")


@test_case(points=1, hidden=True)
def params_of_a_full_branch(full_branch_params):
    _answered(full_branch_params=full_branch_params)
    w = 512
    assert full_branch_params != 9 * w * w, (
        "the branch reads the concatenation of the three embedded maps: 3w input channels, not w")
    assert full_branch_params != 9 * 3 * w + 3 * w * w, "this is the separable branch: the question asks for an ordinary 3x3"
    assert full_branch_params == 9 * 3 * w * w, "an ordinary 3x3 convolution from 3w to w channels has 9 * 3w * w weights"
