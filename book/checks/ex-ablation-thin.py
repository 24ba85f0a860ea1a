"""Checks of ex-ablation-thin (chapter 7): how much of an output-stride-32 cell a thin pole covers."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-ablation-thin"
CELL = 32  # output stride 32: one output position per 32 x 32 input pixels


def _near(a, b):
    return abs(a - b) <= 0.05 * b  # a width rounded to whole pixels (15 for 15.0) still counts


@test_case(points=1)
def share_of_a_cell(cell_share_scale, cell_share_full, SCALE_PX, full):
    assert cell_share_scale is not None and cell_share_full is not None, (
        "no answer yet: set cell_share_scale and cell_share_full to the fractions (0 to 1) of a 32 x 32 cell")
    for side, got in ((SCALE_PX, cell_share_scale), (full.train_image_size, cell_share_full)):
        width = 4 * side / SCALE_PX  # the generator scales the width with the image
        got = float(got)
        if _near(got, width * CELL / CELL**2):
            continue
        assert not _near(got, 4 * CELL / CELL**2), (
            f"at {side} px: the width grows with the image, a 4-pixel pole at {SCALE_PX} px is "
            f"4 x {side} / {SCALE_PX} = {width:.1f} px wide at {side} px")
        assert not _near(got, width / CELL**2), (
            f"at {side} px: you counted one row of the pole; a straight pole crosses the whole cell, covering "
            f"width x {CELL} of its {CELL} x {CELL} pixels")
        assert not _near(got, width**2 / CELL**2), (
            f"at {side} px: a width x width square is a dot, not a pole; the pole crosses the cell: width x {CELL}")
        assert not _near(got, min(width / 8, 1.0)), (
            f"at {side} px: that is a cell of output stride 8; the bilinear network's C5 has output stride 32, "
            f"cells of {CELL} x {CELL} pixels")
        raise AssertionError(f"at {side} px you say {got:.3g}; a pole {width:.1f} px wide crossing a {CELL} x {CELL} "
                             f"cell covers {width:.1f} x {CELL} / {CELL ** 2} = {width / CELL:.3f} of it")
