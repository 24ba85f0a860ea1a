"""Checks of ex-first-block (chapter 2): the FLOPs ratio, dilated over plain, of the first block of layer3/layer4."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-first-block"


def _answered(**answers):
    missing = [key for key, value in answers.items() if not isinstance(value, (int, float))]
    assert not missing, f"no answer yet: set {', '.join(missing)} to a number (dilated FLOPs / plain FLOPs)"


@test_case(points=0)
def ratios_are_answered(ratio_layer3, ratio_layer4):
    _answered(ratio_layer3=ratio_layer3, ratio_layer4=ratio_layer4)
    assert ratio_layer3 > 1 and ratio_layer4 > 1, "a ratio dilated/plain: the dilated block costs more, so above 1"


@test_case(points=1, hidden=True)
def ratio_of_layer3(ratio_layer3):
    _answered(ratio_layer3=ratio_layer3)
    assert abs(ratio_layer3 - 4) > 0.05, (
        "not the whole block runs 4 times as often: its first 1x1 conv (512 -> 256) reads the block's input, "
        "which has the same size in both trunks (the stride comes after it)")
    assert abs(ratio_layer3 - 1507328 / 475136) < 0.01, (
        "count per input position: the 1x1 reduction on all P positions, the 3x3, the 1x1 expansion and the "
        "projection shortcut on P/4 (plain) or P (dilated)")


@test_case(points=1, hidden=True)
def ratio_of_layer4(ratio_layer4):
    _answered(ratio_layer4=ratio_layer4)
    assert abs(ratio_layer4 - 16) > 0.05, (
        "not the whole block runs 16 times as often: its 1x1 reduction runs on the block's input, which is "
        "4 times larger in the dilated trunk, not 16 times")
    assert abs(ratio_layer4 - 24117248 / 1900544) < 0.01, (
        "in layer4 the widths double (1024 -> 512 -> 2048, shortcut 1024 -> 2048) and the dilated block's "
        "input has 4 times the positions of the plain one")
