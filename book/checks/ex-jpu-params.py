"""Checks of ex-jpu-params (chapter 5): JPU's parameters by hand, against the module itself."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-jpu-params"


@test_case(points=1)
def formula_matches_the_module(jpu_params):
    from fastfcn.complexity import count_parameters
    from fastfcn.models.jpu import JPU

    assert callable(jpu_params), "no answer yet: define jpu_params(c3, c4, c5, w) that returns your formula's count"
    for c3, c4, c5, w in ((512, 1024, 2048, 512), (8, 16, 32, 4), (10, 20, 40, 6)):
        got, expected = jpu_params(c3, c4, c5, w), count_parameters(JPU((c3, c4, c5), w))
        assert got is not None, "no answer yet: jpu_params returns None; return your formula's count"
        # the two slips measured on the reference: no BatchNorm at all, or one parameter per channel
        hint = {38 * w: " Every BatchNorm counts too: gamma and beta, 2 per channel.",
                19 * w: " A BatchNorm has 2 parameters per channel (gamma and beta), not 1."}.get(expected - got, "")
        assert got == expected, (
            f"for C3, C4, C5 = {c3}, {c4}, {c5} and w = {w} your formula gives {got}, JPU has {expected} "
            f"({expected - got:+d} missing).{hint} Count the embedding convolutions, each branch's depthwise "
            "and pointwise convolutions, and their BatchNorms")
