"""Chapter 9's measurement (fastfcn.lessons.recovery), on tiny sizes: the kept positions, the regression, the head."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from fastfcn.lessons import recovery as R
from fastfcn.models import build_model, build_upsampler

pytestmark = pytest.mark.usefixtures("one_thread")  # 2 shared cores: one thread is faster and steadier


def _random_bn(module: torch.nn.Module, seed: int = 0) -> None:
    """Random BatchNorm statistics and affine parameters, so that BN is not the identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)


def _images(n: int, size: int, classes: int = 4, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(3, size, size, generator=gen), torch.randint(0, classes, (size, size), generator=gen))
            for _ in range(n)]


def test_kept_mask_is_one_position_in_sixteen_at_multiples_of_four():
    mask = R.kept_mask(16, 16)
    assert mask.sum() == 16 and mask[0, 0] and mask[4, 8] and mask[12, 12]
    assert not mask[1, 0] and not mask[2, 2] and not mask[0, 15]
    odd = R.kept_mask(9, 13)  # odd sizes: rows 0, 4, 8 and columns 0, 4, 8, 12
    assert odd.sum() == 3 * 4 and odd[8, 12]


@pytest.mark.parametrize("size", [64, 72])  # dilated C5 8x8 and 9x9 (plain 2x2 and 3x3)
def test_plain_c5_is_the_dilated_c5_on_the_kept_positions_only(size):
    model = build_model("encnet", backbone="resnet18", upsampling="none", num_classes=4, aux_loss=False)
    _random_bn(model)
    dilated, plain = R.backbone_pair(model)
    bank = R.extract_features(dilated, plain, _images(2, size), 2)
    assert bank.extra["c3_max_abs_diff"] < 1e-5 * float(bank.c3.abs().max())
    kept = R.kept_mask(*bank.y_d.shape[-2:])
    h, w = bank.c5.shape[-2:]
    on_kept = bank.y_d[..., kept].reshape(*bank.y_d.shape[:2], h, w)
    assert torch.allclose(on_kept, bank.c5, rtol=1e-5, atol=1e-5 * float(bank.c5.abs().max()))
    errors = R.offset_errors(bank.c5, bank.y_d)
    assert len(errors) == 16 and errors[0, 0] < 1e-5
    assert min(v for k, v in errors.items() if k != (0, 0)) > 1e-2  # the other offsets are other positions
    # putting the samples back where they came from is exact there, and only there
    aligned = R.aligned_upsample(bank.c5, bank.y_d.shape[-2:])
    e = R.approximation_errors(aligned, bank.y_d, kept)
    assert e["rel_error_kept"] < 1e-5 and e["rel_error_other"] > 1e-2


def test_aligned_upsample_places_sample_i_at_position_four_i():
    c5 = torch.arange(9.0).reshape(1, 1, 3, 3)
    up = R.aligned_upsample(c5, (11, 11))
    assert up.shape[-2:] == (11, 11)
    assert torch.equal(up[..., ::4, ::4], c5)
    assert up[0, 0, 0, 2] == 0.5 and up[0, 0, 10, 10] == 8  # halfway between samples; past the last, a copy


def test_standardizer_round_trip():
    bank = R.extract_features(*R.random_backbone_pair("resnet18", seed=1), _images(3, 64), 3)
    st = R.Standardizer.fit(bank)
    z = st.apply(bank)
    assert z.masks is bank.masks
    sd = bank.y_d.std(dim=(0, 2, 3))
    live = sd > 0.1 * sd.mean()  # channels above the floor of the spread
    assert torch.allclose(z.y_d.mean(dim=(0, 2, 3)), torch.zeros(()), atol=1e-4)
    assert torch.allclose(z.y_d.std(dim=(0, 2, 3))[live], torch.ones(()), atol=1e-3)
    assert torch.allclose(st.restore(st.target(bank.y_d)), bank.y_d, atol=1e-4)


@pytest.mark.parametrize("kind", R.MODULES)
def test_regression_lowers_the_error(kind):
    bank = R.extract_features(*R.random_backbone_pair("resnet18", seed=0), _images(4, 64), 4)
    z = R.Standardizer.fit(bank).apply(bank)
    torch.manual_seed(0)
    reg = R.build_regressor(kind, bank.channels(), bank.y_d.shape[1], width=8)
    kept = R.kept_mask(*bank.y_d.shape[-2:])
    # fit on the very images it is scored on: the test is that the fit works, not that it generalises
    history = R.train_regressor(reg, z, z, iterations=30, batch_size=2, lr=1e-2, eval_points=3, kept=kept)
    assert [h["iteration"] for h in history] == [0, 15, 30]
    assert history[-1]["rel_error"] < 0.95 * history[0]["rel_error"]
    assert history[-1]["cosine"] > history[0]["cosine"]
    assert {"rel_error_kept", "rel_error_other", "train_loss"} <= set(history[-1])
    cost = R.module_cost(reg, z)
    assert cost["params"] == sum(p.numel() for p in reg.parameters()) and cost["gmacs"] > 0
    if kind == "bilinear":  # the upsampling itself has no parameters: all of them are the 512 -> 512 projection
        assert cost["params"] == 512 * 512 + 512


def test_frozen_head_with_the_real_y_d_reproduces_the_dilated_model():
    model = build_model("encnet", backbone="resnet18", upsampling="none", num_classes=4, jpu_width=8)
    _random_bn(model, seed=3)
    model.eval()
    images = _images(3, 64, seed=2)
    bank = R.extract_features(*R.backbone_pair(model), images, 3, batch_size=3)
    x = torch.stack([im for im, _ in images])
    with torch.no_grad():
        own = model(x, with_aux=False)["out"]
    assert torch.equal(R.head_logits(model, bank.y_d, x.shape[-2:]), own)
    from fastfcn.inference.metrics import confusion_matrix, scores

    ref = scores(confusion_matrix(own.argmax(1), bank.masks, 4))["mIoU"]
    got = R.frozen_head_scores(model, bank.y_d, bank.masks, 4, batch_size=2, reference=own.argmax(1))
    assert got["mIoU"] == pytest.approx(ref, abs=1e-12) and got["agreement"] == 1.0


def test_center_crop_pads_small_images_and_crops_large_ones():
    crop = R.CenterCrop(4, lambda im, m: (im.float(), m.long()))
    im, m = crop(torch.ones(3, 2, 6, dtype=torch.uint8), torch.zeros(2, 6, dtype=torch.uint8))
    assert im.shape == (3, 4, 4) and m.shape == (4, 4)
    assert (m[2:] == 255).all() and (m[:2] == 0).all() and (im[:, 2:] == 0).all()


def test_unknown_module_is_refused():
    with pytest.raises(ValueError, match="unknown module 'aspp'"):
        R.build_regressor("aspp", (8, 16, 32), 32, 8)


def test_regressors_are_the_package_upsamplers_with_a_projection():
    for kind in R.MODULES:
        reg = R.build_regressor(kind, (8, 16, 32), 24, width=4)
        assert type(reg.upsample) is type(build_upsampler(kind, (8, 16, 32), 4))
        assert reg.project.in_channels == reg.upsample.out_channels and reg.project.out_channels == 24
    with pytest.raises(ValueError, match="unknown module 'none'"):  # the package's "no module" has nothing to fit
        R.build_regressor("none", (8, 16, 32), 24, 4)


def test_first_images_of_a_bank_and_the_procedural_image_set():
    images = R.image_set(SimpleNamespace(dataset="procedural"), "val", 3, 32)
    assert isinstance(images, list) and len(images) == 3  # drawn once: both trunk pairs read the same list
    image, mask = images[0]
    assert image.shape == (3, 32, 32) and mask.shape == (32, 32)
    bank = R.extract_features(*R.random_backbone_pair("resnet18", seed=0), images, 3)
    first = bank.first(2)
    assert len(first) == 2 and torch.equal(first.y_d, bank.y_d[:2]) and torch.equal(first.masks, bank.masks[:2])
    assert first.channels() == bank.channels()
