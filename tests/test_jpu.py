"""JPU (fastfcn.models.jpu) and the joint-upsampling worked example (fastfcn.lessons.joint_upsampling)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fastfcn.lessons.joint_upsampling import (
    PixelNet,
    apply_to_groups,
    downsample,
    fit,
    interpolate,
    joint_upsample,
    make_family,
    psnr,
    random_target,
    synthetic_guidance,
)
from fastfcn.models.jpu import JPU, JPU_DILATIONS
from fastfcn.models.resnet import build_resnet
from fastfcn.utils.threads import limited_threads

CH = (8, 16, 32)  # C3, C4, C5 channels of a toy backbone
WIDTH = 4


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Seeded, and on one thread: these tensors are so small that more threads only add overhead."""
    torch.manual_seed(0)
    with limited_threads(1):
        yield


def _inputs(h3: int, w3: int, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random C3, C4, C5 with the sides a plain backbone gives (each stride-2 step: ceil(n / 2))."""
    h4, w4 = -(-h3 // 2), -(-w3 // 2)
    h5, w5 = -(-h4 // 2), -(-w4 // 2)
    return (torch.randn(batch, CH[0], h3, w3), torch.randn(batch, CH[1], h4, w4),
            torch.randn(batch, CH[2], h5, w5))


@pytest.mark.parametrize("h3,w3", [(13, 11), (9, 9), (7, 16), (5, 3)])
def test_output_is_four_widths_at_c3_resolution(h3, w3):
    jpu = JPU(CH, width=WIDTH).eval()
    c3, c4, c5 = _inputs(h3, w3)
    with torch.no_grad():
        out = jpu(c3, c4, c5)
        y_c = jpu.fuse(c3, c4, c5)
    assert out.shape == (1, 4 * WIDTH, h3, w3)
    assert y_c.shape == (1, 3 * WIDTH, h3, w3)
    assert jpu.out_channels == 4 * WIDTH


@pytest.mark.parametrize("side", [67, 45])
def test_output_shape_on_a_real_backbone_with_odd_inputs(side):
    trunk = build_resnet("resnet18").eval()
    jpu = JPU(trunk.channels[1:], width=WIDTH).eval()
    with torch.no_grad():
        _, c3, c4, c5 = trunk(torch.randn(1, 3, side, side + 2))
        out = jpu(c3, c4, c5)
    assert out.shape == (1, 4 * WIDTH, *c3.shape[-2:])
    assert c3.shape[-2:] == (-(-side // 8), -(-(side + 2) // 8))


@pytest.mark.parametrize("zeroed,block", [("conv5", 0), ("conv4", 1), ("conv3", 2)])
def test_concatenation_is_deepest_first(zeroed, block):
    """Zeroing one embedding's weights blanks exactly its block of y_c: [C5', C4', C3']."""
    jpu = JPU(CH, width=WIDTH).eval()  # fresh BN: mean 0, beta 0, so a zero conv gives exactly 0
    with torch.no_grad():
        getattr(jpu, zeroed)[0].weight.zero_()
        y_c = jpu.fuse(*_inputs(12, 10))
    blocks = y_c.split(WIDTH, dim=1)
    for i, b in enumerate(blocks):
        if i == block:
            assert torch.count_nonzero(b) == 0
        else:
            assert torch.count_nonzero(b) > 0


def test_fuse_resizes_with_align_corners():
    jpu = JPU(CH, width=WIDTH).eval()
    c3, c4, c5 = _inputs(9, 9)  # 9 -> 5 -> 3: C4 samples land exactly on the even positions
    with torch.no_grad():
        y_c = jpu.fuse(c3, c4, c5)
        e4, e5 = jpu.conv4(c4), jpu.conv5(c5)
    assert torch.allclose(y_c[:, WIDTH:2 * WIDTH, ::2, ::2], e4, atol=1e-6)
    assert torch.allclose(y_c[:, :WIDTH, ::4, ::4], e5, atol=1e-6)
    expected = F.interpolate(e4, (9, 9), mode="bilinear", align_corners=True)
    assert torch.allclose(y_c[:, WIDTH:2 * WIDTH], expected, atol=1e-6)


def test_branches_have_the_right_dilation_and_padding():
    jpu = JPU(CH, width=WIDTH)
    assert [b.dilation for b in jpu.dilations] == list(JPU_DILATIONS) == [1, 2, 4, 8]
    for branch, rate in zip(jpu.dilations, JPU_DILATIONS, strict=True):
        dw, pw = branch.depthwise, branch.pointwise
        assert dw.kernel_size == (3, 3)
        assert dw.dilation == (rate, rate)
        assert dw.padding == (rate, rate)
        assert dw.groups == dw.in_channels == dw.out_channels == 3 * WIDTH
        assert pw.kernel_size == (1, 1)
        assert (pw.in_channels, pw.out_channels) == (3 * WIDTH, WIDTH)
        # impulse response: the depthwise conv reads only offsets in {-rate, 0, rate}^2
        x = torch.zeros(1, 3 * WIDTH, 21, 21)
        x[..., 10, 10] = 1.0
        with torch.no_grad():
            dw.weight.fill_(1.0)
            y = dw(x)[0, 0]
        assert y.shape == (21, 21)
        hits = {(int(i) - 10, int(j) - 10) for i, j in torch.nonzero(y)}
        assert hits == {(a * rate, b * rate) for a in (-1, 0, 1) for b in (-1, 0, 1)}


def test_gradients_reach_every_parameter():
    jpu = JPU(CH, width=WIDTH).train()
    c3, c4, c5 = _inputs(10, 9, batch=2)
    out = jpu(c3, c4, c5)
    (out * torch.randn_like(out)).sum().backward()
    for name, p in jpu.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_jpu_rejects_wrong_number_of_inputs():
    with pytest.raises(ValueError):
        JPU((8, 16), width=WIDTH)


# --- the joint-upsampling worked example (chapter 4) ---------------------------------------------


def test_pixelnet_equals_the_convolution_it_stands_for():
    net = PixelNet(3, 5, (), kernel_size=3, padding_mode="zeros")
    x = torch.randn(2, 3, 7, 6)
    w = net.body[0].weight.view(5, 3, 3, 3)
    assert torch.allclose(net(x), F.conv2d(x, w, net.body[0].bias, padding=1), atol=1e-5)


def test_apply_to_groups_of_a_regular_conv_is_the_dilated_conv():
    w = torch.randn(4, 4, 3, 3)
    y = torch.randn(1, 4, 11, 10)
    via_groups = apply_to_groups(lambda g: F.conv2d(g, w, padding=1), y, rate=2)
    assert torch.allclose(via_groups, F.conv2d(y, w, padding=2, dilation=2), atol=1e-5)


def test_fitting_lowers_the_loss():
    x_h = synthetic_guidance(32, seed=1)
    f = random_target(seed=1)
    x_l = downsample(x_h, 4)
    y_l = f(x_l)
    _, result = joint_upsample(x_l, y_l, x_h, "mlp", steps=40)
    assert len(result.losses) == 40
    assert result.losses[-1] < 0.5 * result.losses[0]


def test_joint_upsampling_beats_bilinear_when_the_target_is_in_the_family():
    size, factor = 64, 4
    x_h = synthetic_guidance(size, seed=2)
    f = make_family("linear", seed=3)
    with torch.no_grad():
        f.body[0].weight.normal_()
        f.body[0].bias.normal_()
        y_h = f(x_h)
        x_l = downsample(x_h, factor)
        y_l = f(x_l)
    rng = (y_h.max() - y_h.min()).item()
    est, _ = joint_upsample(x_l, y_l, x_h, "linear", steps=150)
    joint, bilinear = psnr(est, y_h, rng), psnr(interpolate(y_l, size), y_h, rng)
    assert joint > bilinear + 15, (joint, bilinear)


def test_fit_and_helpers_validate_arguments():
    with pytest.raises(ValueError):
        make_family("cubic")
    with pytest.raises(ValueError):
        downsample(torch.zeros(1, 3, 10, 10), 4)
    with pytest.raises(ValueError):
        fit(nn.Linear(1, 1), torch.zeros(1, 1), torch.zeros(1, 1), steps=-1)
    with pytest.raises(ValueError):
        PixelNet(3, 3, kernel_size=2)


CHAPTER4 = Path(__file__).resolve().parents[1] / "book" / "04_joint_upsampling.md"
HIDDEN_TAGS = ("hide-input", "remove-cell", "remove-input", "parameters")


def _visible_code_lines(chapter: Path) -> list[str]:
    """The non-blank source lines of the code cells a reader sees (not hidden, removed or parameters)."""
    lines = []
    for cell in re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```", chapter.read_text(), re.S | re.M):
        tags = re.search(r"^:tags:\s*\[(.*?)\]", cell, re.M)
        if tags and any(t in tags.group(1) for t in HIDDEN_TAGS):
            continue
        lines += [ln for ln in cell.splitlines() if ln.strip() and not ln.startswith(":tags:")]
    return lines


def test_chapter4_shows_the_method_and_checks_it_against_the_reference():
    code = _visible_code_lines(CHAPTER4)
    text = "\n".join(code)
    # the descent of Eq. 1 and the S -> h -> M of Eq. 4 are written in view, not imported
    assert "def solve_by_descent(" in text and "loss.backward()" in text and "optimiser.step()" in text
    assert "def teaching_apply_to_groups(" in text and "merge(" in text
    # the reference functions appear only in the cells that compare against them
    for name in ("joint_upsample", "apply_to_groups", "fit"):
        uses = [ln for ln in code if re.search(rf"(?<![\w.]){name}\(", ln)]
        assert not uses, (name, uses)
    assert "reference_joint_upsample(" in text and "reference_apply_to_groups(" in text
    # the bookkeeping stays out of sight: at most 5 % of the visible lines glue or record figures
    bookkeeping = [ln for ln in code if re.search(r"\b(note|record)\(", ln)]
    assert len(bookkeeping) <= 0.05 * len(code), bookkeeping
