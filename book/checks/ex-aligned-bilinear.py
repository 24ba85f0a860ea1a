"""Checks of ex-aligned-bilinear (chapter 9): C5 put back at the kept positions (4i, 4j) of C3's grid."""

from otter.test_files import test_case

OK_FORMAT = False

name = "ex-aligned-bilinear"


@test_case(points=2)
def kept_positions_hold_c5(AlignedBilinear):
    import torch
    import torch.nn.functional as F

    assert isinstance(AlignedBilinear, type), (
        "no answer yet: define class AlignedBilinear(nn.Module) with __init__(self, channels) and "
        "forward(self, c3, c4, c5)")
    module = AlignedBilinear(6)
    assert getattr(module, "out_channels", None) == 6, (
        "Regressor builds its 1x1 projection from module.out_channels: set self.out_channels = channels "
        "(C5's channels, which the module keeps)")
    generator = torch.Generator().manual_seed(0)
    for height, width in ((16, 16), (14, 18)):
        c3 = torch.randn(2, 4, height, width, generator=generator)
        c4 = torch.randn(2, 5, (height + 1) // 2, (width + 1) // 2, generator=generator)
        c5 = torch.randn(2, 6, (height + 3) // 4, (width + 3) // 4, generator=generator)
        out = module(c3, c4, c5)
        assert out is not None, "no answer yet: forward returns None; return C5 on C3's grid"
        assert tuple(out.shape) == (2, 6, height, width), (
            f"for C3 of {height}x{width} the output is {tuple(out.shape)}: it should be C5's channels on C3's grid, "
            f"{(2, 6, height, width)}")
        error = (out[..., ::4, ::4] - c5).abs().max().item()
        if error > 1e-5:
            corners = F.interpolate(c5, (height, width), mode="bilinear", align_corners=True)
            centres = F.interpolate(c5, (height, width), mode="bilinear", align_corners=False)
            if torch.allclose(out, corners, atol=1e-5):
                raise AssertionError(
                    "this is BilinearUpsample's resizing: align_corners=True stretches C5's first and last samples "
                    f"onto C3's corners, so sample i lands at i * ({height} - 1) / ({c5.shape[-2]} - 1), not at 4i. "
                    "R.aligned_upsample(c5, c3.shape[-2:]) places it at 4i")
            if torch.allclose(out, centres, atol=1e-5):
                raise AssertionError(
                    "align_corners=False aligns the pixels' centres: sample i lands at 4i + 1.5, between the kept "
                    "positions. R.aligned_upsample(c5, c3.shape[-2:]) places it at 4i")
            raise AssertionError(f"for C3 of {height}x{width} the output at (4i, 4j) differs from C5[i, j] by "
                                 f"{error:.2g}: each C5 value belongs at position 4i, 4j (R.aligned_upsample)")


@test_case(points=1, hidden=True)
def the_projection_mixes_the_kept_positions(projection_keeps_kept_exact):
    assert projection_keeps_kept_exact is not None, "no answer yet: set projection_keeps_kept_exact to True or False"
    assert projection_keeps_kept_exact is False, (
        "the 1x1 projection is one linear map for every position, fitted where 15 in 16 positions hold "
        "interpolated values: least squares shrinks and mixes the channels there, and the kept positions with them")
