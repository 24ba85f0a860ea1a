"""Whole-image and sliding-window inference, and the presets of the fast path that predict and eval use."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from fastfcn.checkpoint import save_checkpoint
from fastfcn.data.transforms import normalize
from fastfcn.inference import fast_path
from fastfcn.inference.evaluate import predict_labels, predict_probs
from fastfcn.inference.fast_path import EXACT, optimize, parse_variant, resolve_variant, variant_for
from fastfcn.inference.predict import Predictor

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model(calibrated_encnet_jpu) -> torch.nn.Module:
    return calibrated_encnet_jpu


class Counting(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.calls, self.sizes = net, 0, []

    def forward(self, x: torch.Tensor) -> dict:
        self.calls += 1
        self.sizes.append(tuple(x.shape[-2:]))
        return self.net(x, with_aux=False)


def test_whole_mode_is_one_forward_at_the_long_side(model) -> None:
    image = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 60, 80), dtype=np.uint8))
    counted = Counting(model)
    probs = predict_probs(counted, image, base_size=96, crop_size=64, mode="whole")
    assert counted.calls == 1 and counted.sizes == [(72, 96)]  # the long side at base_size, the aspect kept
    # by hand: resize, one forward, softmax, resize back
    x = F.interpolate(normalize(image)[None], (72, 96), mode="bilinear", align_corners=True)
    with torch.no_grad():
        want = F.interpolate(model(x, with_aux=False)["out"].softmax(1), (60, 80), mode="bilinear",
                             align_corners=True)[0]
    torch.testing.assert_close(probs, want)
    assert torch.equal(predict_labels(model, image, base_size=96, crop_size=64, mode="whole"), want.argmax(0).byte())
    counted.calls = 0
    predict_probs(counted, image, base_size=96, crop_size=64, mode="slide")
    assert counted.calls == 4  # 72x96 in 64 crops every 42 pixels: 2 x 2 windows (and four at the paper's sizes)
    with pytest.raises(ValueError, match="inference mode 'tiles'"):
        predict_probs(model, image, mode="tiles")


def test_whole_mode_pads_a_strip(model) -> None:
    image = torch.zeros(3, 4, 90, dtype=torch.uint8)
    counted = Counting(model)
    labels = predict_labels(counted, image, base_size=64, crop_size=48, mode="whole")
    assert labels.shape == (4, 90) and counted.sizes == [(33, 64)]


def test_presets(monkeypatch) -> None:
    assert resolve_variant("exact", "cpu") == EXACT == "channels_last+fold_bn"
    assert resolve_variant("compile+fp32", "cpu") == "compile+fp32"  # not a preset: as it is
    monkeypatch.setattr("fastfcn.utils.device.bf16_supported", lambda device: True)
    assert resolve_variant("reduced", "cpu") == "channels_last+fold_bn+bf16+early_fp32"
    assert variant_for("torch", "bf16", "cpu") == "channels_last+fold_bn+bf16+early_fp32"
    monkeypatch.setattr("fastfcn.utils.device.bf16_supported", lambda device: False)
    with pytest.warns(RuntimeWarning, match="does not compute bfloat16 natively"):
        assert resolve_variant("reduced", "cpu") == EXACT  # bf16 emulated would be slower than fp32
    assert variant_for("torch", "fp32", "cpu", compile=True) == "compile+channels_last+fold_bn"
    assert variant_for("openvino", "fp32", "cpu") == "openvino+fp32"
    for bad, message in [(("onnxruntime", "bf16"), "ONNX Runtime runs fp32"), (("tensorrt", "fp32"), "unknown runtime"),
                         (("torch", "int8"), "unknown precision")]:
        with pytest.raises(ValueError, match=message):
            variant_for(*bad, "cpu")
    with pytest.raises(ValueError, match="takes no other"):
        parse_variant("onnxruntime+fold_bn", "cpu")
    assert parse_variant("openvino", "cpu")["dtype_given"] is False


def test_the_exact_path_skips_the_aux_and_se_heads_and_keeps_the_labels(model) -> None:
    calls = []
    fast = optimize(model, "exact")
    assert fast.variant == EXACT
    hooks = [fast.model.aux_head.register_forward_hook(lambda *a: calls.append("aux"))]
    x = normalize(torch.from_numpy(np.random.default_rng(2).integers(0, 256, (2, 3, 64, 96), dtype=np.uint8)))
    with torch.inference_mode():
        got = fast(x)
        want = model(x, with_aux=False)["out"]
    for h in hooks:
        h.remove()
    assert set(got) == {"out"} and calls == []  # the aux head is not run; the SE output not returned
    torch.testing.assert_close(got["out"], want, rtol=1e-4, atol=1e-4)
    assert torch.equal(got["out"].argmax(1), want.argmax(1))
    assert fast_path.OptimizedModel is type(fast) and fast.config == model.config


def test_predictor_defaults_to_whole_images(model, tmp_path: Path) -> None:
    path = tmp_path / "m.pth"
    save_checkpoint(model, path, classes=None, train_config={"base_size": 96, "crop_size": 64})
    rgb = np.random.default_rng(3).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = Predictor(path, device="cpu", runtime="torch")
    assert p.mode == "whole" and p.variant == EXACT and "whole image at long side 96" in p.describe()
    image = torch.from_numpy(rgb).permute(2, 0, 1)
    want = predict_labels(model, image, base_size=96, crop_size=64, mode="whole").numpy()
    assert (p.labels(rgb) == want).all()  # the exact path: the labels of fp32 eager whole-image inference
    slide = Predictor(path, device="cpu", runtime="torch", mode="slide")
    assert (slide.labels(rgb) == predict_labels(model, image, base_size=96, crop_size=64).numpy()).all()
    with pytest.raises(ValueError, match="inference mode"):
        Predictor(path, device="cpu", mode="tiles")
    Image.fromarray(rgb).save(tmp_path / "x.png")


def test_optimize_is_at_the_front_door_without_loading_inference_on_import() -> None:
    import subprocess
    import sys

    import fastfcn

    assert fastfcn.optimize is optimize
    code = "import sys, fastfcn; print(any(m.startswith('fastfcn.inference') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
    with pytest.raises(AttributeError, match="no attribute 'optimise'"):
        fastfcn.optimise  # noqa: B018


def test_ties_go_to_the_first_class_as_argmax_does() -> None:
    class Tied(torch.nn.Module):  # classes 1 and 3 tie everywhere, above the others
        def forward(self, x: torch.Tensor) -> dict:
            logits = torch.zeros(x.shape[0], 5, *x.shape[-2:])
            logits[:, [1, 3]] = 2.0
            return {"out": logits}

    image = torch.zeros(3, 40, 30, dtype=torch.uint8)
    for mode in ("whole", "slide"):
        probs = predict_probs(Tied(), image, base_size=48, crop_size=40, mode=mode)
        labels = predict_labels(Tied(), image, base_size=48, crop_size=40, mode=mode)
        assert torch.equal(labels.long(), probs.argmax(0)) and bool((labels == 1).all())


def test_emulated_bf16_is_not_timed(monkeypatch) -> None:
    variants = ["fp32", "channels_last", "bf16", "channels_last+fold_bn+bf16+early_fp32", "onnxruntime", "openvino"]
    monkeypatch.setattr("fastfcn.utils.device.bf16_supported", lambda device: False)
    assert fast_path.native_variants(variants, "cpu") == (
        ["fp32", "channels_last", "onnxruntime", "openvino"], ["bf16", "channels_last+fold_bn+bf16+early_fp32"])
    assert not any("bf16" in v for v in fast_path.default_variants("cpu"))
    monkeypatch.setattr("fastfcn.utils.device.bf16_supported", lambda device: True)
    assert fast_path.native_variants(variants, "cpu") == (variants, [])
    assert "channels_last+fold_bn+bf16+early_fp32" in fast_path.default_variants("cpu", with_compile=False)


def test_forward_probs_in_place_equals_a_new_softmax_and_keeps_gradients() -> None:
    """forward_probs writes the softmax into the logits' memory under no_grad; with autograd on it cannot."""
    from fastfcn.inference.windows import forward_probs, segment_logits
    from fastfcn.models import build_model

    torch.manual_seed(0)
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=5, jpu_width=16).eval()
    x = torch.randn(1, 3, 48, 40)
    with torch.no_grad():
        want = segment_logits(model, x).softmax(1)
        assert torch.equal(forward_probs(model, x, flip=False), want)
    probs = forward_probs(model, x, flip=False)
    assert probs.requires_grad and torch.allclose(probs, want)
