"""Checks of ex-overview-stride (chapter 1): Conv5's side for 480 px crops, plain and dilated, and the positions."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-overview-stride"


def _answered(**answers):
    missing = [key for key, value in answers.items() if not isinstance(value, (int, float))]
    assert not missing, f"no answer yet: set {', '.join(missing)} to a number"


@test_case(points=1)
def positions_grow_with_the_square_of_the_side(conv5_side_plain, conv5_side_dilated, more_positions):
    _answered(conv5_side_plain=conv5_side_plain, conv5_side_dilated=conv5_side_dilated, more_positions=more_positions)
    assert more_positions != conv5_side_dilated / conv5_side_plain, (
        "this is how much longer a side is: a map has side x side positions, so the ratio of positions is its square")
    assert abs(more_positions - (conv5_side_dilated / conv5_side_plain) ** 2) < 1e-9, (
        "the ratio of positions is (dilated side / plain side) squared")


@test_case(points=1, hidden=True)
def sides_of_conv5(conv5_side_plain, conv5_side_dilated):
    _answered(conv5_side_plain=conv5_side_plain, conv5_side_dilated=conv5_side_dilated)
    assert (conv5_side_plain, conv5_side_dilated) != (60, 15), "the two are swapped: the dilated map is the larger one"
    assert conv5_side_plain == 480 / 32, "an ordinary ResNet ends at output stride 32: Conv5's side is the crop's / 32"
    assert conv5_side_dilated == 480 / 8, "a dilated ResNet ends at output stride 8: Conv5's side is the crop's / 8"
