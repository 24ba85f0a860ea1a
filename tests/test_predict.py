"""``fastfcn predict``: every Pillow mode to RGB, outputs per image, a bad file reported and skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fastfcn.checkpoint import save_checkpoint
from fastfcn.cli import main
from fastfcn.data.images import read_rgb, to_rgb
from fastfcn.inference.predict import collect_inputs, overlay
from fastfcn.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


def test_to_rgb_modes() -> None:
    rgb = np.array([[[10, 20, 30], [200, 100, 0]]], np.uint8)
    assert (to_rgb(Image.fromarray(rgb)) == rgb).all()
    gray = to_rgb(Image.fromarray(np.array([[0, 128]], np.uint8)))
    assert gray.dtype == np.uint8 and gray.tolist() == [[[0, 0, 0], [128, 128, 128]]]
    rgba = np.array([[[10, 20, 30, 255], [200, 100, 0, 0]]], np.uint8)
    out = to_rgb(Image.fromarray(rgba))
    assert out.tolist() == [[[10, 20, 30], [255, 255, 255]]]  # transparent -> white background
    p = Image.fromarray(np.array([[0, 1]], np.uint8))
    p.putpalette([0, 0, 0, 250, 10, 5] + [0] * 762)
    assert p.mode == "P" and to_rgb(p).tolist() == [[[0, 0, 0], [250, 10, 5]]]
    deep = Image.fromarray(np.array([[0, 257 * 100, 65535]], np.uint16))
    assert deep.mode == "I;16"
    assert to_rgb(deep)[0, :, 0].tolist() == [0, 100, 255]  # scaled, not clipped
    assert to_rgb(Image.fromarray(np.array([[0, 30000]], np.int32)))[0, :, 0].tolist() == [0, 117]
    assert to_rgb(Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)))[0, :, 0].tolist() == [0, 128, 255]
    assert to_rgb(Image.new("CMYK", (3, 2))).shape == (2, 3, 3)
    assert to_rgb(Image.new("1", (3, 2), 1)).tolist() == [[[255] * 3] * 3] * 2
    assert to_rgb(Image.new("LA", (1, 1), (50, 255))).tolist() == [[[50, 50, 50]]]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=4, jpu_width=16)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_checkpoint(model, path, classes=["a", "b", "c", "d"], train_config={"base_size": 48, "crop_size": 40})
    return path


def _write_inputs(folder: Path) -> dict[str, tuple[int, int]]:
    folder.mkdir()
    rng = np.random.default_rng(0)
    sizes = {}
    Image.fromarray(rng.integers(0, 256, (37, 51, 3), dtype=np.uint8)).save(folder / "rgb.jpg")
    sizes["rgb.jpg"] = (37, 51)
    Image.fromarray(rng.integers(0, 256, (20, 70), dtype=np.uint8)).save(folder / "gray.png")
    sizes["gray.png"] = (20, 70)
    Image.fromarray(rng.integers(0, 256, (64, 33, 4), dtype=np.uint8)).save(folder / "alpha.png")
    sizes["alpha.png"] = (64, 33)
    p = Image.fromarray(rng.integers(0, 8, (25, 25), dtype=np.uint8))
    p.putpalette(list(rng.integers(0, 256, 768)))
    p.save(folder / "palette.png")
    sizes["palette.png"] = (25, 25)
    Image.fromarray(rng.integers(0, 65536, (9, 100), dtype=np.uint16)).save(folder / "deep.png")
    sizes["deep.png"] = (9, 100)
    (folder / "broken.png").write_bytes(b"this is not a PNG file")
    (folder / "notes.txt").write_text("not an image, ignored in folders")
    return sizes


def test_predict_folder_with_a_bad_file(tmp_path: Path, checkpoint: Path, capsys) -> None:
    sizes = _write_inputs(tmp_path / "in")
    with Image.open(tmp_path / "in" / "deep.png") as im:
        assert im.mode in ("I;16", "I")
    out = tmp_path / "out"
    rc = main(["predict", str(tmp_path / "in"), "--checkpoint", str(checkpoint), "--out", str(out),
               "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "broken.png" in err and "cannot read" in err
    assert "notes.txt" not in err
    for name, (h, w) in sizes.items():
        with Image.open(out / "in" / f"{name}_mask.png") as mask:
            assert mask.mode == "P" and mask.size == (w, h)
            assert np.asarray(mask).max() < 4
        with Image.open(out / "in" / f"{name}_overlay.png") as over:
            assert over.mode == "RGB" and over.size == (w, h)
    assert not (out / "in" / "broken.png_mask.png").exists()
    assert not list(out.rglob("*.tmp"))


def test_predict_single_files_and_missing(tmp_path: Path, checkpoint: Path, capsys) -> None:
    _write_inputs(tmp_path / "in")
    files = [str(tmp_path / "in" / "gray.png"), str(tmp_path / "in" / "notes.txt"), str(tmp_path / "nope.png")]
    rc = main(["predict", *files, "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"),
               "--device", "cpu", "--ms"])
    err = capsys.readouterr().err
    assert rc == 1 and "notes.txt" in err and "nope.png" in err
    assert (tmp_path / "out" / "gray.png_mask.png").is_file()
    assert (tmp_path / "out" / "gray.png_overlay.png").is_file()


def test_output_names_do_not_collide(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "a.jpg").write_bytes(b"")
    files, missing, skipped = collect_inputs([tmp_path / "a.png", tmp_path / "a.jpg", tmp_path / "a.png"])
    stems = [str(s) for _, s in files]
    assert stems == ["a.png", "a.jpg", "a.png_2"] and not missing and skipped == 0


def test_overlay_at_half_opacity_equals_the_float_blend() -> None:
    """The default opacity's integer blend: every pair of values as the float formula, rounded half to even."""
    a, b = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8), indexing="ij")
    rgb, colours = np.stack([a, b, a], -1), np.stack([b, a, b], -1)
    blend = np.rint(0.5 * rgb.astype(np.float32) + 0.5 * colours.astype(np.float32)).astype(np.uint8)
    assert np.array_equal(overlay(rgb, colours), blend)
    assert overlay(np.array([[[1, 3, 0]]], np.uint8), np.array([[[2, 2, 255]]], np.uint8)).tolist() == [[[2, 2, 128]]]


@pytest.mark.parametrize("alpha", [0.5, 0.3])
def test_predict_overlay_is_the_input_blended_with_the_mask_colours(tmp_path: Path, checkpoint: Path,
                                                                   alpha: float) -> None:
    _write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    main(["predict", str(tmp_path / "in" / "rgb.jpg"), "--checkpoint", str(checkpoint), "--out", str(out),
          "--device", "cpu", "--no-progress", "--alpha", str(alpha)])
    with Image.open(out / "rgb.jpg_mask.png") as mask, Image.open(out / "rgb.jpg_overlay.png") as over:
        colours = np.asarray(mask.convert("RGB"))
        assert np.array_equal(np.asarray(over), overlay(read_rgb(tmp_path / "in" / "rgb.jpg"), colours, alpha))
