"""fastfcn.inference.fold: BatchNorm folded into the convolution before it gives the same function."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fastfcn import build_model
from fastfcn.benchmark import calibrate_bn
from fastfcn.inference.fold import fold_batchnorm, fold_conv_bn


def _random_bn(channels: int, affine: bool = True) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, affine=affine).double()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.2, 3.0)
    if affine:
        with torch.no_grad():
            bn.weight.normal_()
            bn.bias.normal_()
    return bn.eval()


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("groups,dilation", [(1, 1), (4, 2)])
def test_fold_conv_bn_is_exact(bias: bool, affine: bool, groups: int, dilation: int) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 12, 3, padding=dilation, dilation=dilation, groups=groups, bias=bias).double()
    bn = _random_bn(12, affine)
    x = torch.randn(2, 8, 9, 7, dtype=torch.float64)
    fused = fold_conv_bn(conv, bn)
    torch.testing.assert_close(fused(x), bn(conv(x)), rtol=1e-12, atol=1e-12)
    assert conv.bias is None or conv.bias is not fused.bias  # the original is untouched


def test_fold_conv_bn_rejects_mismatch() -> None:
    with pytest.raises(ValueError, match="12 output channels but the BatchNorm 5"):
        fold_conv_bn(nn.Conv2d(3, 12, 1), nn.BatchNorm2d(5))
    with pytest.raises(ValueError, match="without running statistics"):
        fold_conv_bn(nn.Conv2d(3, 5, 1), nn.BatchNorm2d(5, track_running_stats=False))


@pytest.mark.parametrize("head,upsampling,backbone", [("encnet", "jpu", "resnet18"), ("aspp", "none", "resnet18"),
                                                      ("psp", "fpn", "resnet18"), ("encnet", "bilinear", "resnet50s")])
def test_fold_batchnorm_on_the_models(head: str, upsampling: str, backbone: str, one_thread) -> None:
    torch.manual_seed(0)
    model = build_model(head, backbone=backbone, upsampling=upsampling, num_classes=6, jpu_width=32)
    calibrate_bn(model, 64)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    folded, n = fold_batchnorm(model, torch.randn(1, 3, 64, 64))
    # in these networks every BatchNorm2d follows a convolution whose output nothing else reads
    assert n == n_bn > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 67, 45)  # another size than the one used to find the pairs
    with torch.no_grad():
        want, got = model(x), folded(x)
    for key, ref in want.items():
        if ref is not None:
            torch.testing.assert_close(got[key], ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    for k, v in model.state_dict().items():  # the original model is not modified
        assert torch.equal(v, before[k])


class _ConvBnResidual(nn.Module):
    """conv -> bn, plus the conv's raw output added back: that BatchNorm must not be folded."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 1)
        self.bn2 = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.bn2(self.conv2(self.bn(y) + y))


def test_fold_batchnorm_keeps_a_bn_whose_input_is_read_elsewhere() -> None:
    torch.manual_seed(0)
    model = _ConvBnResidual()
    for bn in (model.bn, model.bn2):
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    model.eval()
    folded, n = fold_batchnorm(model, torch.randn(1, 3, 8, 8))
    assert n == 1 and isinstance(folded.bn, nn.BatchNorm2d) and isinstance(folded.bn2, nn.Identity)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)
