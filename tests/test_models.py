"""Every network of the paper builds, runs on odd sizes, trains (gradients everywhere) and round-trips."""

from __future__ import annotations

import itertools

import pytest
import torch

from fastfcn import HEADS, UPSAMPLINGS, build_model, build_resnet
from fastfcn.checkpoint import model_from_checkpoint, save_checkpoint

NUM_CLASSES = 5


def _loss(out: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(v.float().pow(2).mean() for v in out.values())


@pytest.mark.parametrize("backbone", ["resnet50", "resnet50s"])
@pytest.mark.parametrize("head,upsampling", list(itertools.product(HEADS, UPSAMPLINGS)))
def test_forward_backward_odd_size(head: str, upsampling: str, backbone: str) -> None:
    torch.manual_seed(0)
    model = build_model(head, backbone=backbone, upsampling=upsampling, num_classes=NUM_CLASSES, jpu_width=64)
    model.train()
    x = torch.randn(2, 3, 67, 45)
    out = model(x)
    assert out["out"].shape == (2, NUM_CLASSES, 67, 45)
    assert out["aux"].shape == (2, NUM_CLASSES, 67, 45)
    if head == "encnet":
        assert out["se"].shape == (2, NUM_CLASSES)
    else:
        assert "se" not in out
    _loss(out).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"parameters without a finite gradient: {no_grad[:5]}"
    zero = [n for n, p in model.named_parameters() if p.grad.abs().sum() == 0]
    assert not zero, f"parameters with an all-zero gradient: {zero[:5]}"


@pytest.mark.parametrize("upsampling,stride", [("none", 8), ("bilinear", 32), ("fpn", 32), ("jpu", 32)])
def test_backbone_output_stride(upsampling: str, stride: int) -> None:
    model = build_model("fcn", backbone="resnet18", upsampling=upsampling, num_classes=3, jpu_width=16).eval()
    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        c2, c3, c4, c5 = model.backbone(x)
        _, high_res = model.features(x)
    assert c2.shape[-2:] == (32, 24)
    assert c5.shape[-2:] == (128 // stride, 96 // stride)
    # whatever the upsampling, the head works at output stride 8
    assert high_res.shape[-2:] == (16, 12)


def test_dilated_layout_matches_torchvision() -> None:
    """Our OS8 ResNet-50 = torchvision's with replace_stride_with_dilation=[False, True, True]."""
    import torchvision

    ours = build_resnet("resnet50", output_stride=8).eval()
    ref = torchvision.models.resnet50(weights=None, replace_stride_with_dilation=[False, True, True]).eval()
    missing, unexpected = ref.load_state_dict(ours.state_dict(), strict=False)
    assert not missing or set(missing) == {"fc.weight", "fc.bias"}
    assert not unexpected
    x = torch.randn(1, 3, 65, 63)
    with torch.no_grad():
        c5 = ours(x)[-1]
        r = ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))
        r = ref.layer4(ref.layer3(ref.layer2(ref.layer1(r))))
    torch.testing.assert_close(c5, r)


def test_plain_backbone_matches_torchvision() -> None:
    import torchvision

    ours = build_resnet("resnet101", output_stride=32).eval()
    ref = torchvision.models.resnet101(weights=None).eval()
    ref.load_state_dict(ours.state_dict(), strict=False)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        r = ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))
        r = ref.layer4(ref.layer3(ref.layer2(ref.layer1(r))))
        torch.testing.assert_close(ours(x)[-1], r)


@pytest.mark.parametrize("backbone", ["resnet18", "resnet34"])
def test_basic_block_backbones_dilate(backbone: str) -> None:
    net = build_resnet(backbone, output_stride=8)
    feats = net(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512]
    assert [f.shape[-1] for f in feats] == [16, 8, 8, 8]


def test_eval_is_deterministic_and_state_dict_round_trips(tmp_path) -> None:
    torch.manual_seed(1)
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=4, jpu_width=32)
    model.train()
    model(torch.randn(2, 3, 64, 64))  # move the BN running statistics away from their initial values
    model.eval()
    x = torch.randn(1, 3, 70, 50)
    with torch.no_grad():
        a, b = model(x), model(x)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    path = save_checkpoint(model, tmp_path / "m.pth", classes=["a", "b", "c", "d"])
    restored, ckpt = model_from_checkpoint(path)
    assert ckpt["classes"] == ["a", "b", "c", "d"]
    assert restored.config == model.config
    with torch.no_grad():
        c = restored(x)
    for k in a:
        torch.testing.assert_close(a[k], c[k], rtol=0, atol=0)


def test_jpu_width_and_channels() -> None:
    model = build_model("encnet", backbone="resnet50", upsampling="jpu", num_classes=59)
    assert model.upsample.out_channels == 2048  # 4 x 512, what the EncNet head receives
    assert model.head.conv[0].kernel_size == (1, 1)  # 1x1 after JPU
    dilated = build_model("encnet", backbone="resnet50", upsampling="none", num_classes=59)
    assert dilated.head.conv[0].kernel_size == (3, 3)
    assert dilated.upsample is None


def test_se_and_aux_switches() -> None:
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=3, aux_loss=False, se_loss=False,
                        jpu_width=16).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert set(out) == {"out"}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"head": "unet"}, "unknown head 'unet'"),
        ({"head": "encnet", "backbone": "vgg16"}, "unknown backbone 'vgg16'"),
        ({"head": "encnet", "upsampling": "deconv"}, "unknown upsampling 'deconv'"),
        ({"head": "encnet", "num_classes": 0}, "num_classes must be a positive integer"),
        ({"head": "psp", "se_loss": True}, "se_loss is EncNet's branch"),
        ({"head": "encnet", "jpu_width": 0}, "jpu_width must be a positive integer"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_model(**kwargs)


def test_bad_input_is_rejected() -> None:
    model = build_model("fcn", backbone="resnet18", upsampling="jpu", num_classes=3, jpu_width=16).eval()
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        model(torch.randn(3, 64, 64))
    with pytest.raises(TypeError, match="float"):
        model(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


def test_imagenet_weights_offline_error_is_clear(monkeypatch) -> None:
    import torchvision.models as tvm

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tvm.ResNet50_Weights.IMAGENET1K_V1.__class__, "get_state_dict", no_network)
    with pytest.raises(RuntimeError, match="weights_backbone='/path/to/file.pth'"):
        build_resnet("resnet50", weights="imagenet")
    with pytest.raises(ValueError, match="no ImageNet weights for the backbone .resnet50s."):
        build_resnet("resnet50s", weights="imagenet")


def test_backbone_weights_from_local_file(tmp_path) -> None:
    import torchvision

    ref = torchvision.models.resnet50(weights=None)
    path = tmp_path / "resnet50.pth"
    torch.save(ref.state_dict(), path)
    model = build_model("encnet", backbone="resnet50", upsampling="jpu", num_classes=3, weights_backbone=str(path))
    torch.testing.assert_close(model.backbone.layer4[2].conv3.weight, ref.layer4[2].conv3.weight)
    with pytest.raises(FileNotFoundError, match="neither 'imagenet' nor an existing file"):
        build_resnet("resnet50", weights=str(tmp_path / "missing.pth"))
    torch.save(ref.state_dict(), tmp_path / "r50.pth")
    with pytest.raises(RuntimeError, match="do not fit resnet101"):
        build_resnet("resnet101", weights=str(tmp_path / "r50.pth"))


def test_builder_follows_torchvision_conventions() -> None:
    with pytest.raises(TypeError):
        build_model("encnet", "resnet18")  # keyword-only after the head, as torchvision's builders
    with pytest.warns(DeprecationWarning, match="aux_loss"):
        old = build_model("psp", backbone="resnet18", upsampling="jpu", num_classes=3, jpu_width=16, aux=False)
    assert old.aux_head is None and old.config["aux_loss"] is False


def test_forward_can_skip_the_aux_head() -> None:
    torch.manual_seed(0)
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=3, jpu_width=16).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        full, main = model(x), model(x, with_aux=False)
    assert set(full) == {"out", "aux", "se"} and set(main) == {"out"}  # inference: the main output alone
    torch.testing.assert_close(main["out"], full["out"], rtol=0, atol=0)


def test_checkpoints_with_the_old_aux_key_still_load(tmp_path) -> None:
    from fastfcn.checkpoint import model_from_checkpoint, save_checkpoint

    model = build_model("fcn", backbone="resnet18", upsampling="none", num_classes=2, aux_loss=False)
    path = save_checkpoint(model, tmp_path / "m.pth")
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["aux"] = ckpt["config"].pop("aux_loss")  # as written before the rename
    torch.save(ckpt, path)
    loaded, _ = model_from_checkpoint(path)
    assert loaded.aux_head is None and loaded.config["aux_loss"] is False


def test_half_width_resnet18_is_resnet18_with_half_the_channels() -> None:
    """The book's miniature trunk: the same layers as ResNet-18, every width halved, a quarter of the arithmetic."""
    from fastfcn.complexity import complexity
    from fastfcn.models.resnet import build_resnet

    full, half = build_resnet("resnet18"), build_resnet("resnet18_w32")
    assert half.channels == [32, 64, 128, 256] and full.channels == [64, 128, 256, 512]
    assert [n for n, _ in half.named_modules()] == [n for n, _ in full.named_modules()]
    ratio = complexity(half, 64).flops / complexity(full, 64).flops
    assert 0.24 < ratio < 0.27   # the stem's 3-channel input keeps it a little above 1/4
    for os_ in (8, 32):
        c2, c3, c4, c5 = build_resnet("resnet18_w32", output_stride=os_)(torch.randn(1, 3, 64, 64))
        assert c5.shape == (1, 256, 64 // os_, 64 // os_)
    model = build_model("encnet", backbone="resnet18_w32", upsampling="jpu", num_classes=3, jpu_width=8).eval()
    assert model(torch.randn(1, 3, 64, 64))["out"].shape == (1, 3, 64, 64)
    with pytest.raises(ValueError, match="ImageNet weights for the backbone 'resnet18_w32'"):
        build_resnet("resnet18_w32", weights="imagenet")


def test_the_front_door_builds_every_upsampling_module() -> None:
    import fastfcn

    assert fastfcn.build_upsampler("none", (128, 256, 512), 64) is None  # the dilated backbone needs none
    jpu = fastfcn.build_upsampler("jpu", (128, 256, 512), 64)
    assert isinstance(jpu, fastfcn.JPU)
    for kind in fastfcn.UPSAMPLINGS:
        if kind != "none":
            assert isinstance(fastfcn.build_upsampler(kind, (128, 256, 512), 64), torch.nn.Module)
