"""Checks of ex-target-in-family (chapter 4): when f is in the family, joint upsampling recovers it."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-target-in-family"


@test_case(points=1)
def joint_upsampling_recovers_a_member_of_the_family(psnr_joint, psnr_bilinear):
    missing = [key for key, value in (("psnr_joint", psnr_joint), ("psnr_bilinear", psnr_bilinear)) if value is None]
    assert not missing, f"no answer yet: set {', '.join(missing)} to a PSNR in dB (a number)"
    joint, bilinear = float(psnr_joint), float(psnr_bilinear)
    if joint < bilinear:
        raise AssertionError(
            f"the joint estimate ({joint:.1f} dB) scores below interpolation ({bilinear:.1f} dB): did you "
            ".clamp(0, 1) it? The chapter clamps because its f ends in a sigmoid; an affine f's values leave "
            "(0, 1), and clamping cuts them off")
    assert joint > bilinear + 10, (
        f"{joint:.1f} dB against {bilinear:.1f} dB: when f is in the family, the optimum of Eq. 1 is f itself, so "
        "the joint estimate is exact up to the optimiser's accuracy, tens of dB above interpolation. Fit the "
        "linear family on (x_l, y_l) for enough steps (the solution's 300) and score h(x_h) against y_h = f(x_h)")
