"""Checks of ex-aligned-sizes (chapter 5): the input sides whose C4 and C5 samples land on C3's grid."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-aligned-sizes"


def _sides(s):
    import math

    return math.ceil(s / 8), math.ceil(s / 16), math.ceil(s / 32)


@test_case(points=0)
def sides_in_range(aligned_sides):
    assert aligned_sides is not None, "no answer yet: set aligned_sides to the list of sides s in 480..544"
    assert all(480 <= s <= 544 for s in aligned_sides), "the question asks for sides between 480 and 544"


@test_case(points=2, hidden=True)
def sides_that_align(aligned_sides):
    assert aligned_sides is not None, "no answer yet: set aligned_sides to the list of sides s in 480..544"
    expected = [s for s in range(480, 545) if (lambda h3, h4, h5: h3 - 1 == 2 * (h4 - 1) == 4 * (h5 - 1))(*_sides(s))]
    without_minus_one = [s for s in range(480, 545) if (lambda h3, h4, h5: h3 == 2 * h4 == 4 * h5)(*_sides(s))]
    confused = set(aligned_sides) - set(expected)
    if confused and confused <= set(without_minus_one):
        raise AssertionError("with align_corners=True the first and the last samples line up, so the maps align "
                             "when H3 - 1 = 2 (H4 - 1) = 4 (H5 - 1): compare the gaps, not the sides")
    assert sorted(aligned_sides) == expected, (
        "a plain ResNet maps a side n to ceil(n / 2) at every stride-2 layer: H3 = ceil(s/8), H4 = ceil(s/16), "
        "H5 = ceil(s/32); the samples align when H3 - 1 = 2 (H4 - 1) = 4 (H5 - 1)")
