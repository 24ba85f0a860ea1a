"""Checks of ex-padding-modes (chapter 3): where split, convolve, merge goes wrong with other padding modes."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-padding-modes"
MODES, LENGTHS = ("reflect", "replicate", "circular"), (9, 10)


def _given(wrong_positions):
    assert isinstance(wrong_positions, dict), (
        "no answer yet: set wrong_positions to a dict {(mode, length): [positions that differ]}")
    missing = [(m, n) for m in MODES for n in LENGTHS if wrong_positions.get((m, n)) is None]
    assert not missing, f"wrong_positions has no answer for {missing}: give a list, empty where nothing differs"


def _measured(mode, length):
    import torch
    import torch.nn.functional as F

    from fastfcn.ops import merge, split

    torch.manual_seed(0)
    w, x = torch.randn(1, 1, 3), torch.randn(1, 1, length)

    def conv(t, d):
        return F.conv1d(F.pad(t, (d, d), mode=mode), w, dilation=d)

    diff = (conv(x, 2) - merge([conv(g, 1) for g in split(x)])).abs().flatten()
    return (diff > 1e-5).nonzero().flatten().tolist()


@test_case(points=1)
def every_mode_and_length_is_answered(wrong_positions):
    _given(wrong_positions)


@test_case(points=2, hidden=True)
def the_positions_that_go_wrong(wrong_positions):
    _given(wrong_positions)
    for mode in MODES:
        for length in LENGTHS:
            got, truth = sorted(wrong_positions[(mode, length)]), _measured(mode, length)
            if mode == "circular" and length % 2 and not got:
                raise AssertionError("circular, odd length: the wrap crosses from one parity to the other at "
                                     "the borders, so the groups wrap onto the wrong neighbours there")
            assert got == truth, (
                f"{mode}, length {length}: you say {got}, the convolutions differ at {truth}. Padding invents "
                "values from neighbours, and a position's neighbours in f and in its group f^p are not the same")
