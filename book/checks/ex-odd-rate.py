"""Checks of ex-odd-rate (chapter 5): which dilation rates keep a 3x3 window inside the centre's sub-map."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-odd-rate"


@test_case(points=1)
def rule_matches_the_windows(keeps_submaps_apart, taps, parity_classes):
    assert callable(keeps_submaps_apart), (
        "no answer yet: define keeps_submaps_apart(rate) that returns True when a 3x3 window with that dilation "
        "only reads the centre's sub-map (the chapter's taps and parity_classes must be defined too)")
    for rate in range(1, 13):
        window = taps((16, 16), rate, 64)
        truth = len(parity_classes(window)) == 1
        answer = keeps_submaps_apart(rate)
        assert answer is not None, "no answer yet: keeps_submaps_apart returns None; return True or False"
        got = bool(answer)
        assert got == truth, (
            f"rate {rate}: your rule says {got}, the window centred at (16, 16) reads "
            f"{len(parity_classes(window))} of the 4 sub-maps. A tap at offset +-rate keeps the index's parity "
            "exactly when the rate is even")
