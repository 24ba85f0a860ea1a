"""The one image reader: datasets and ``predict`` decode files the same way; only EXIF orientation differs."""

from __future__ import annotations

import io
import zlib

import numpy as np
import torch
from PIL import Image

from fastfcn.data.base import read_image
from fastfcn.data.images import PNG_COMPRESS_LEVEL, PNG_ZLIB_STRATEGY, read_rgb, save_png, write_png


def test_datasets_and_predict_decode_16_bit_and_transparent_images_alike(tmp_path) -> None:
    deep = np.array([[0, 257 * 100], [65535, 257 * 7]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque; the others are fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    for name in ("deep.png", "alpha.png"):
        assert torch.equal(read_image(tmp_path / name), torch.from_numpy(read_rgb(tmp_path / name)).permute(2, 0, 1))
    assert read_rgb(tmp_path / "deep.png")[..., 0].tolist() == [[0, 100], [255, 7]]  # scaled, not clipped
    alpha = read_rgb(tmp_path / "alpha.png")
    assert alpha[0, 0].tolist() == [10, 20, 30] and alpha[1, 1].tolist() == [255, 255, 255]  # over white


def test_exif_orientation_turns_photos_but_not_dataset_images(tmp_path) -> None:
    pixels = np.zeros((2, 4, 3), np.uint8)
    pixels[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "photo.png", exif=exif)
    assert read_rgb(tmp_path / "photo.png").shape == (4, 2, 3)  # as a viewer shows it: 4 high, 2 wide
    assert tuple(read_image(tmp_path / "photo.png").shape) == (3, 2, 4)  # [3, H, W]: as stored, 2 high
    assert read_image(tmp_path / "photo.png")[:, 0, 0].tolist() == [255, 255, 255]


def test_png_writer_keeps_the_pixels_at_its_level(tmp_path) -> None:
    """One PNG writer: the pixels come back unchanged, the bytes are Pillow's at PNG_COMPRESS_LEVEL with zlib's
    run-length strategy, the file is replaced atomically."""
    rgb = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    image = Image.fromarray(rgb)
    path = save_png(image, tmp_path / "out.png")
    assert np.array_equal(read_rgb(path), rgb)
    ours, pillows = io.BytesIO(), io.BytesIO()
    write_png(image, ours)
    image.save(pillows, format="PNG", compress_level=PNG_COMPRESS_LEVEL, compress_type=PNG_ZLIB_STRATEGY)
    assert ours.getvalue() == pillows.getvalue() == path.read_bytes()
    # the strategy reaches zlib: on a mask of blocks (repeats at a distance) run-lengths give other bytes
    blocks = Image.fromarray(np.kron(np.arange(64, dtype=np.uint8).reshape(8, 8) % 5, np.ones((8, 8), np.uint8)))
    rle, default = io.BytesIO(), io.BytesIO()
    write_png(blocks, rle)
    blocks.save(default, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    assert PNG_ZLIB_STRATEGY == zlib.Z_RLE and rle.getvalue() != default.getvalue()
    assert np.array_equal(np.asarray(Image.open(rle)), np.asarray(blocks))
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temporary file left
