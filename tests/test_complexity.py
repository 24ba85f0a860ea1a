"""FLOP counts against hand-computed ones, and against the official implementation's GMACs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fastfcn import JPU, build_model, complexity
from fastfcn.paper import OFFICIAL_GMACS


def test_single_conv_flops_by_hand() -> None:
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False))
    c = complexity(conv, (20, 30))
    assert c.flops == 2 * 3 * 8 * 9 * 20 * 30
    assert c.params == 3 * 8 * 9
    # activation bytes: the conv's output, fp32
    assert c.activation_bytes == 8 * 20 * 30 * 4


class _JPUOnly(nn.Module):
    """JPU fed with C3/C4/C5-shaped tensors made from an RGB input of side s (strides 8, 16, 32)."""

    def __init__(self, jpu: JPU, channels: tuple[int, int, int]) -> None:
        super().__init__()
        self.jpu, self.channels = jpu, channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        c3, c4, c5 = (x.new_zeros(n, c, h // s, w // s) for c, s in zip(self.channels, (8, 16, 32), strict=True))
        return self.jpu(c3, c4, c5)


def test_jpu_flops_by_hand() -> None:
    width, ch = 16, (32, 64, 128)
    model = _JPUOnly(JPU(ch, width=width), ch)
    s = 256
    h3, h4, h5 = s // 8, s // 16, s // 32
    convs = 2 * 9 * width * (ch[0] * h3 * h3 + ch[1] * h4 * h4 + ch[2] * h5 * h5)
    branch = 2 * h3 * h3 * (9 * 3 * width + 3 * width * width)  # depthwise + pointwise
    assert complexity(model, s).flops == convs + 4 * branch


@pytest.mark.parametrize("key", sorted(OFFICIAL_GMACS))
def test_gmacs_match_the_official_implementation(key: tuple[str, str, str]) -> None:
    head, backbone, upsampling = key
    model = build_model(head, backbone=backbone + "s", upsampling=upsampling, num_classes=59)
    ours = complexity(model, 512).gmacs
    assert ours == pytest.approx(OFFICIAL_GMACS[key], rel=0.005), (key, ours)


def test_counting_on_the_meta_device_gives_the_real_counts() -> None:
    """complexity() counts on a meta copy: the same FLOPs, activation and saved-for-backward bytes as a real
    forward, and the model itself keeps its weights."""
    from fastfcn.complexity import saved_for_backward_bytes

    torch.manual_seed(0)
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=4, jpu_width=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    c = complexity(model, 48, batch_size=2, training_memory=True)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(p.is_meta for p in model.parameters())
    real = saved_for_backward_bytes(model, torch.randn(2, 3, 48, 48))
    assert c.saved_for_backward_bytes == real > 0
    with torch.device("meta"):
        meta_model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=4, jpu_width=16)
    assert complexity(meta_model, 48, batch_size=2).flops == c.flops
