"""The one image reader: datasets and ``predict`` decode files the same way; only EXIF orientation differs."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from fastfcn.data.base import read_image
from fastfcn.data.images import (
    PNG_COMPRESS_LEVEL,
    PNG_ZLIB_STRATEGY,
    read_rgb,
    save_png,
    write_png,
    write_rgb_png,
)


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
    """One PNG writer: the pixels come back unchanged, masks are Pillow's bytes at PNG_COMPRESS_LEVEL with zlib's
    run-length strategy, RGB images are this package's encoder at the same settings, files are replaced
    atomically."""
    rgb = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    image = Image.fromarray(rgb)
    path = save_png(image, tmp_path / "out.png")
    assert np.array_equal(read_rgb(path), rgb)
    ours = io.BytesIO()
    write_png(image, ours)
    assert ours.getvalue() == path.read_bytes()
    idat = _idat(ours.getvalue())
    rows = rgb.reshape(40, 90).astype(np.int16)
    up = np.concatenate([rows[:1], np.diff(rows, axis=0)]) % 256  # the "up" filter: each row minus the one above
    filtered = np.concatenate([np.full((40, 1), 2), up], axis=1).astype(np.uint8).tobytes()
    compressor = zlib.compressobj(PNG_COMPRESS_LEVEL, zlib.DEFLATED, 15, 8, PNG_ZLIB_STRATEGY)
    assert zlib.decompress(idat) == filtered and idat == compressor.compress(filtered) + compressor.flush()
    # the strategy reaches zlib: on a mask of blocks (repeats at a distance) run-lengths give other bytes
    blocks = Image.fromarray(np.kron(np.arange(64, dtype=np.uint8).reshape(8, 8) % 5, np.ones((8, 8), np.uint8)))
    rle, default, pillows = io.BytesIO(), io.BytesIO(), io.BytesIO()
    write_png(blocks, rle)
    blocks.save(default, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    blocks.save(pillows, format="PNG", compress_level=PNG_COMPRESS_LEVEL, compress_type=PNG_ZLIB_STRATEGY)
    assert PNG_ZLIB_STRATEGY == zlib.Z_RLE and rle.getvalue() == pillows.getvalue() != default.getvalue()
    assert np.array_equal(np.asarray(Image.open(rle)), np.asarray(blocks))
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temporary file left


def _idat(png: bytes) -> bytes:
    """The concatenated IDAT data of a PNG file, each chunk's CRC checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    data, at = b"", 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at:at + 4])
        kind, body = png[at + 4:at + 8], png[at + 8:at + 8 + length]
        assert struct.unpack(">I", png[at + 8 + length:at + 12 + length])[0] == zlib.crc32(kind + body)
        data += body if kind == b"IDAT" else b""
        at += 12 + length
    assert kind == b"IEND"
    return data


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (13, 1), (50, 33)])
@pytest.mark.parametrize("band_rows", [1, 7, 1000])
def test_rgb_png_from_bands_decodes_to_the_rows(shape: tuple[int, int], band_rows: int) -> None:
    height, width = shape
    rgb = np.random.default_rng(height * width + band_rows).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    write_rgb_png(out, (rgb[top:top + band_rows] for top in range(0, height, band_rows)), height, width)
    out.seek(0)
    with Image.open(out) as im:
        im.verify()
    out.seek(0)
    with Image.open(out) as im:
        assert im.mode == "RGB" and np.array_equal(np.asarray(im), rgb)


def test_rgb_png_rejects_bands_that_do_not_make_the_image() -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match=r"uint8 \[rows, 5, 3\] adding up to 4 rows; got float32"):
        write_rgb_png(io.BytesIO(), [rgb.astype(np.float32)], 4, 5)
    with pytest.raises(ValueError, match="adding up to 4 rows; got uint8 .3, 5, 3. after 2 rows"):
        write_rgb_png(io.BytesIO(), [rgb[:2], rgb[:3]], 4, 5)
    with pytest.raises(ValueError, match="the bands hold 3 rows, the image 4"):
        write_rgb_png(io.BytesIO(), [rgb[:3]], 4, 5)
    with pytest.raises(ValueError, match="1 to 2\\*\\*31 - 1 pixels on each side, got 0 x 5"):
        write_rgb_png(io.BytesIO(), [], 0, 5)
