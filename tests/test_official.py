"""Official FastFCN checkpoints load into our models and give the official implementation's outputs.

The references in ``tests/fixtures/official`` were computed once by running the official code
(wuhuikai/FastFCN, in float64) on the weights of :func:`official_fixtures.official_like_state`; see
``official_fixtures.py``. Here we rebuild those weights, save them as the official trainer does,
load them with :func:`fastfcn.load_official` (or the ``fastfcn convert`` CLI) and compare.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from official_fixtures import (
    FIXTURES,
    fixture_names,
    load_fixture,
    official_checkpoint,
    official_like_state,
    reference_input,
    subsample,
)

import fastfcn
from fastfcn.checkpoint import model_from_checkpoint
from fastfcn.cli import main as cli_main
from fastfcn.models.heads import Encoding
from fastfcn.models.official import OfficialCheckpointError

ATOL = 1e-4
ATOL_FP32 = 3e-4  # a float32 run on any machine against the float32 reference (see test_matches_official_outputs)
NAMES = fixture_names()
EXPECTED = ["deeplab_dilated_r50", "deeplab_jpu_r50", "encnet_dilated_r50", "encnet_jpu_r101", "encnet_jpu_r50",
            "psp_dilated_r50", "psp_jpu_r50"]


def _save_official(tmp_path: Path, meta: dict, data_parallel: bool = False, name: str = "model_best.pth.tar") -> Path:
    path = tmp_path / name
    torch.save(official_checkpoint(meta, data_parallel=data_parallel), path)
    return path


def _max_diffs(model: torch.nn.Module, ref: dict[str, torch.Tensor], dtype: torch.dtype = torch.float32
               ) -> dict[str, float]:
    model = model.to(dtype).eval()
    with torch.no_grad():
        out = subsample(model(reference_input(dtype)))
    assert set(out) == set(ref), f"outputs {sorted(out)} but the reference has {sorted(ref)}"
    for key in ref:
        assert out[key].shape == ref[key].shape, (key, out[key].shape, ref[key].shape)
    return {key: float((out[key] - ref[key]).abs().max()) for key in ref}


def test_fixtures_present_and_small() -> None:
    assert NAMES == EXPECTED
    total = sum(p.stat().st_size for p in FIXTURES.iterdir())
    assert total < 2 * 2**20, f"fixtures take {total} bytes"


def test_official_like_state_is_deterministic() -> None:
    meta, _ = load_fixture("encnet_jpu_r50")
    a = official_like_state(meta["keys"], 0)
    b = official_like_state([(k, tuple(s)) for k, s in meta["keys"]], 0)
    assert list(a) == [k for k, _ in meta["keys"]]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["head.conv6.1.weight"], official_like_state(meta["keys"], 1)["head.conv6.1.weight"])
    assert a["pretrained.bn1.num_batches_tracked"].dtype == torch.long
    assert (a["head.encmodule.encoding.3.scale"] < 0).all()


@pytest.mark.parametrize("name", EXPECTED)
def test_matches_official_outputs(name: str, tmp_path: Path) -> None:
    meta, ref = load_fixture(name)
    path = _save_official(tmp_path, meta)
    model = fastfcn.load_official(path, **meta["load"])
    assert not model.training
    assert model.config["aux_loss"] and model.config["se_loss"] == meta["official"]["se_loss"]
    # in float64 only the float32 rounding of the stored reference remains: the exact test of faithfulness
    diffs64 = _max_diffs(model, ref, torch.float64)
    assert max(diffs64.values()) <= 1e-5, diffs64
    # in float32 the machine's kernels add their own rounding (the order in which a convolution sums
    # depends on the CPU's vector width: 1.2e-4 seen on an AVX2 EPYC, 4e-5 on AVX-512 machines)
    diffs = _max_diffs(model, ref)
    print(f"{name}: max abs diff (float32) {diffs}")
    assert max(diffs.values()) <= ATOL_FP32, diffs


def test_data_parallel_prefix(tmp_path: Path) -> None:
    meta, ref = load_fixture("encnet_jpu_r50")
    path = _save_official(tmp_path, meta, data_parallel=True)
    assert all(k.startswith("module.") for k in torch.load(path, weights_only=True)["state_dict"])
    model = fastfcn.load_official(path, **meta["load"])
    assert max(_max_diffs(model, ref).values()) <= ATOL


def test_checkpoint_without_batch_counters(tmp_path: Path) -> None:
    """Checkpoints written before PyTorch 0.4.1 have no ``num_batches_tracked``: still loadable."""
    meta, ref = load_fixture("psp_dilated_r50")
    ckpt = official_checkpoint(meta)
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if not k.endswith("num_batches_tracked")}
    model = fastfcn.load_official(ckpt, **meta["load"])
    assert max(_max_diffs(model, ref).values()) <= ATOL


@pytest.mark.parametrize("name", ["encnet_jpu_r50", "deeplab_dilated_r50"])
def test_cli_convert(name: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    meta, ref = load_fixture(name)
    src = _save_official(tmp_path, meta, data_parallel=True)
    out = tmp_path / "converted.pth"
    load = meta["load"]
    rc = cli_main(["convert", str(src), str(out), "--head", load["head"], "--backbone", load["backbone"],
                   "--upsampling", load["upsampling"], "--num-classes", str(load["num_classes"])])
    assert rc == 0, capsys.readouterr().err
    model, ckpt = model_from_checkpoint(out)
    assert ckpt["config"]["head"] == load["head"] and ckpt["config"]["upsampling"] == load["upsampling"]
    assert max(_max_diffs(model, ref).values()) <= ATOL


def test_cli_convert_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    meta, _ = load_fixture("encnet_jpu_r50")
    src = _save_official(tmp_path, meta)
    out = tmp_path / "converted.pth"
    rc = cli_main(["convert", str(src), str(out), "--head", "encnet", "--num-classes", "150"])
    err = capsys.readouterr().err
    assert rc != 0 and not out.exists()
    assert "59 classes" in err and "num_classes=59" in err


def test_encoding_layer_matches_official() -> None:
    """The Encoding layer alone, with soft assignments (the model fixtures' assignments are nearly hard)."""
    ref = torch.load(FIXTURES / "encoding_layer.pt", weights_only=True)
    channels, codes = ref["codewords"].shape[1], ref["codewords"].shape[0]
    layer = Encoding(channels, codes).double()
    layer.load_state_dict({"codewords": ref["codewords"], "scale": ref["scale"]})
    with torch.no_grad():
        encoded = layer(ref["x"])
        encoded_3d = layer(ref["x"].flatten(2))
    torch.testing.assert_close(encoded, ref["encoded"], rtol=0, atol=1e-10)
    torch.testing.assert_close(encoded_3d, ref["encoded"], rtol=0, atol=1e-10)


# --------------------------------------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def encnet_jpu() -> tuple[dict, dict]:
    meta, _ = load_fixture("encnet_jpu_r50")
    return meta, official_checkpoint(meta)


def _load(ckpt: dict, meta: dict, **overrides):
    kwargs = dict(meta["load"])
    kwargs.update(overrides)
    return fastfcn.load_official(ckpt, **kwargs)


@pytest.mark.parametrize("num_classes", [21, 150])
def test_wrong_num_classes(encnet_jpu, num_classes: int) -> None:
    meta, ckpt = encnet_jpu
    with pytest.raises(OfficialCheckpointError, match=rf"has 59 classes but num_classes={num_classes}; "
                                                      r"pass num_classes=59"):
        _load(ckpt, meta, num_classes=num_classes)


@pytest.mark.parametrize("head", ["psp", "aspp", "fcn"])
def test_wrong_head(encnet_jpu, head: str) -> None:
    meta, ckpt = encnet_jpu
    with pytest.raises(OfficialCheckpointError, match=rf"head='{head}' does not fit .* EncNet head .* "
                                                      r"use head='encnet'"):
        _load(ckpt, meta, head=head)


def test_wrong_head_psp_checkpoint() -> None:
    meta, _ = load_fixture("psp_dilated_r50")
    ckpt = official_checkpoint(meta)
    for head in ("encnet", "aspp", "fcn"):
        with pytest.raises(OfficialCheckpointError, match=r"PSP head .* use head='psp'"):
            _load(ckpt, meta, head=head)


@pytest.mark.parametrize("upsampling", ["none", "bilinear", "fpn"])
def test_wrong_upsampling_jpu_checkpoint(encnet_jpu, upsampling: str) -> None:
    meta, ckpt = encnet_jpu
    with pytest.raises(OfficialCheckpointError, match=rf"upsampling='{upsampling}' .* use upsampling='jpu'"):
        _load(ckpt, meta, upsampling=upsampling)


def test_wrong_upsampling_dilated_checkpoint() -> None:
    meta, _ = load_fixture("encnet_dilated_r50")
    with pytest.raises(OfficialCheckpointError, match=r"upsampling='jpu' .* no JPU: use upsampling='none'"):
        _load(official_checkpoint(meta), meta, upsampling="jpu")


@pytest.mark.parametrize("backbone,found", [("resnet101s", "resnet50s"), ("resnet50", "resnet50s")])
def test_wrong_backbone(encnet_jpu, backbone: str, found: str) -> None:
    meta, ckpt = encnet_jpu
    with pytest.raises(OfficialCheckpointError, match=rf"backbone='{backbone}' .* use backbone='{found}'"):
        _load(ckpt, meta, backbone=backbone)


def test_wrong_backbone_r101_checkpoint() -> None:
    meta, _ = load_fixture("encnet_jpu_r101")
    with pytest.raises(OfficialCheckpointError, match=r"\[3, 4, 23, 3\] blocks .* use backbone='resnet101s'"):
        _load(official_checkpoint(meta), meta, backbone="resnet50s")


def test_unknown_keys_are_listed(encnet_jpu) -> None:
    meta, ckpt = encnet_jpu
    ckpt = copy.deepcopy(ckpt)
    ckpt["state_dict"]["head.encmodule.extra.weight"] = torch.zeros(3)
    ckpt["state_dict"]["jpu.dilation5.0.conv1.weight"] = torch.zeros(3)
    with pytest.raises(OfficialCheckpointError) as info:
        _load(ckpt, meta)
    msg = str(info.value)
    assert "unexpected keys (2)" in msg and "missing keys (0)" in msg
    assert "head.encmodule.extra.weight" in msg and "jpu.dilation5.0.conv1.weight" in msg


def test_missing_keys_are_listed(encnet_jpu) -> None:
    meta, ckpt = encnet_jpu
    ckpt = copy.deepcopy(ckpt)
    del ckpt["state_dict"]["pretrained.layer4.2.bn3.running_var"]
    del ckpt["state_dict"]["head.encmodule.encoding.3.scale"]
    with pytest.raises(OfficialCheckpointError) as info:
        _load(ckpt, meta)
    msg = str(info.value)
    assert "missing keys (2)" in msg and "unexpected keys (0)" in msg
    assert "backbone.layer4.2.bn3.running_var" in msg and "head.context.encoding.scale" in msg


def test_other_shape_mismatch_is_not_called_a_class_count(encnet_jpu) -> None:
    meta, ckpt = encnet_jpu
    ckpt = copy.deepcopy(ckpt)
    ckpt["state_dict"]["head.conv6.1.weight"] = torch.zeros(59, 256, 1, 1)
    with pytest.raises(OfficialCheckpointError, match=r"shape mismatch .*head\.classifier\.1\.weight"):
        _load(ckpt, meta)
