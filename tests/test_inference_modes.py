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
    # by hand, as the official evaluator: resize, one forward, the exponential of the logits, resize back
    x = F.interpolate(normalize(image)[None], (72, 96), mode="bilinear", align_corners=True)
    with torch.no_grad():
        scores = F.interpolate(model(x, with_aux=False)["out"].exp(), (60, 80), mode="bilinear",
                               align_corners=True)[0]
    torch.testing.assert_close(probs, scores / scores.sum(0))  # predict_probs: normalised to one per pixel
    assert torch.equal(predict_labels(model, image, base_size=96, crop_size=64, mode="whole"), scores.argmax(0).byte())
    counted.calls = 0
    predict_probs(counted, image, base_size=96, crop_size=64, mode="slide")
    assert counted.calls == 4  # 72x96 in 64 crops every 42 pixels: 2 x 2 windows (and four at the paper's sizes)
    with pytest.raises(ValueError, match="inference mode 'tiles'"):
        predict_probs(model, image, mode="tiles")


def _official_scores(model: torch.nn.Module, image: torch.Tensor, scales: tuple[float, ...], flip: bool,
                     base: int, crop: int) -> torch.Tensor:
    """The official evaluator's summed class scores, step by step as its MultiEvalModule.forward and
    module_inference take them (written here from their description, independently of the package)."""
    import math

    from fastfcn.models import MEAN, STD

    x = normalize(image)[None]
    h, w = x.shape[-2:]
    black = torch.tensor([-m / s for m, s in zip(MEAN, STD, strict=True)]).view(1, 3, 1, 1)

    def pad(img: torch.Tensor) -> torch.Tensor:  # right and bottom, to at least one crop, with black
        out = black.expand(1, 3, max(img.shape[2], crop), max(img.shape[3], crop)).clone()
        out[..., : img.shape[2], : img.shape[3]] = img
        return out

    def inference(img: torch.Tensor) -> torch.Tensor:  # exp of the logits; with flip the mirror's logits added
        logits = model(img, with_aux=False)["out"]
        if flip:
            logits = logits + model(img.flip(-1), with_aux=False)["out"].flip(-1)
        return logits.exp()

    scores = torch.zeros(1, model.config["num_classes"], h, w)
    stride = int(crop * 2.0 / 3.0)
    for scale in scales:
        long_size = int(math.ceil(base * scale))
        height, width = (long_size, int(w * long_size / h + 0.5)) if h > w else (int(h * long_size / w + 0.5), long_size)
        cur = F.interpolate(x, (height, width), mode="bilinear", align_corners=True)
        if long_size <= crop:
            out = inference(pad(cur))[..., :height, :width]
        else:
            padded = pad(cur) if min(height, width) < crop else cur
            ph, pw = padded.shape[-2:]
            total, count = torch.zeros(1, scores.shape[1], ph, pw), torch.zeros(1, 1, ph, pw)
            for i in range(math.ceil((ph - crop) / stride) + 1):
                for j in range(math.ceil((pw - crop) / stride) + 1):
                    h0, w0 = i * stride, j * stride
                    h1, w1 = min(h0 + crop, ph), min(w0 + crop, pw)
                    total[..., h0:h1, w0:w1] += inference(pad(padded[..., h0:h1, w0:w1]))[..., : h1 - h0, : w1 - w0]
                    count[..., h0:h1, w0:w1] += 1
            out = (total / count)[..., :height, :width]
        scores += F.interpolate(out, (h, w), mode="bilinear", align_corners=True)
    return scores[0]


@pytest.mark.parametrize(("scales", "flip"), [((1.0,), False), ((0.5, 1.0, 1.25), True)])
def test_labels_are_the_official_evaluators(model, scales, flip) -> None:
    """Slide mode gives the labels of the official evaluator: exp of the logits (with flip, the mirror's logits
    added first), averaged where windows overlap, resized back and summed over scales; not softmax averages."""
    image = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (3, 50, 70), dtype=np.uint8))
    with torch.no_grad():
        want = _official_scores(model, image, scales, flip, base=64, crop=40)
    got = predict_labels(model, image, scales, flip, base_size=64, crop_size=40)
    assert torch.equal(got, want.argmax(0).byte())
    torch.testing.assert_close(predict_probs(model, image, scales, flip, base_size=64, crop_size=40),
                               want / want.sum(0))


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


def test_forward_scores_are_the_official_exponential_in_place_and_keep_gradients() -> None:
    """forward_scores is the official evaluator's ``module_inference``: exp of the logits, with flip the logits of
    the mirror image added first; under no_grad it is written into the logits' memory, with autograd it cannot."""
    from fastfcn.inference.windows import forward_scores, segment_logits
    from fastfcn.models import build_model

    torch.manual_seed(0)
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=5, jpu_width=16).eval()
    x = torch.randn(1, 3, 48, 40)
    with torch.no_grad():
        logits = segment_logits(model, x)
        assert torch.equal(forward_scores(model, x, flip=False), logits.exp())
        mirrored = segment_logits(model, x.flip(-1)).flip(-1)
        torch.testing.assert_close(forward_scores(model, x, flip=True), (logits + mirrored).exp())
    scores = forward_scores(model, x, flip=False)
    assert scores.requires_grad and torch.allclose(scores, logits.exp())
