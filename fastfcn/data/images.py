"""The one image reader: any file Pillow opens, as RGB ``uint8``, for the datasets and for ``predict``; and the one
PNG writer (:func:`write_png`, :func:`save_png`; :func:`write_rgb_png` for RGB rows a band at a time).

Every Pillow mode becomes RGB uint8: grayscale is replicated, palette images go through their
palette, transparent images (RGBA, LA, P with transparency) are composited over white, 16-bit images
(``I;16``, ``I``) are scaled from 0..65535 to 0..255 rather than clipped, float images (``F``) from
0..1 (or clipped to 0..255), CMYK/YCbCr/LAB/HSV are converted.

``read_rgb(path, max_pixels=N)`` refuses an image of more than ``N`` pixels from its header, before
decoding it (a 291 KB PNG can hold 10000 x 10000 pixels), in place of Pillow's decompression-bomb guard
(which applies when ``max_pixels`` is None).
"""

from __future__ import annotations

import contextlib
import struct
import warnings
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from ..utils.io import atomic_write

__all__ = ["BACKGROUND", "DEFAULT_MAX_PIXELS", "ImageTooLargeError", "to_rgb", "read_rgb", "image_extensions",
           "PNG_COMPRESS_LEVEL", "PNG_ZLIB_STRATEGY", "write_png", "write_rgb_png", "save_png"]

BACKGROUND = (255, 255, 255)  # what transparent pixels are composited over
DEFAULT_MAX_PIXELS = 100_000_000  # what `fastfcn predict` accepts unless told otherwise (10000 x 10000)
_BAND_BYTES = 16 * 2**20
# zlib level and strategy of every PNG written here (the figures below are Pillow's encoder; RGB images now have
# their own, see _UP_FILTER). Level 1 encodes a 512 x 512 overlay in 29 ms against 107 ms at
# Pillow's default 6 (2-core AVX2 EPYC); in `fastfcn predict` on 17 such images (ONNX Runtime, its threads not
# spinning) the marginal cost per image was 0.99 s against 1.05 s at level 6 (three processes each, alternating,
# 2026-12-05): the writer thread's core is one the network would use. zlib's run-length strategy then makes the
# files smaller, not larger, and the encoding faster still: a procedural overlay 25 ms and 386 kB (level 1 with the
# default strategy: 29 ms, 451 kB; level 6: 99 ms, 388 kB), the same with noise added (sd 8) 25 ms and 546 kB
# (37 ms, 577 kB; 43 ms, 546 kB), a mask 1.3 ms and 2.8 kB (1.3 ms, 4.8 kB; 2.0 ms, 2.8 kB) (2026-12-05).
PNG_COMPRESS_LEVEL = 1
PNG_ZLIB_STRATEGY = zlib.Z_RLE


class ImageTooLargeError(ValueError):
    """The image has more pixels than the caller's limit (found from the header, before decoding)."""


def _rgb_array(im: Image.Image) -> np.ndarray:
    """An RGB Pillow image as a new ``uint8 [H, W, 3]`` array, converted a band of rows at a time (one copy
    of the pixels instead of three)."""
    width, height = im.size
    out = np.empty((height, width, 3), np.uint8)
    rows = max(1, _BAND_BYTES // max(1, 3 * width))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        out[top:bottom] = np.asarray(im.crop((0, top, width, bottom)))
    return out


def to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow image -> ``uint8 [H, W, 3]`` RGB (see the module docstring for each mode)."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(im).astype(np.float64)
        if mode == "I" and a.size and a.max() <= 255 and a.min() >= 0:
            gray = a  # 8-bit values stored in a 32-bit image
        else:
            gray = np.clip(a, 0, 65535) / 257.0
        return np.repeat(np.rint(gray).astype(np.uint8)[..., None], 3, axis=2)
    if mode == "F":
        a = np.nan_to_num(np.asarray(im, dtype=np.float64))
        a = a * 255.0 if a.size and a.max() <= 1.0 else a
        return np.repeat(np.rint(np.clip(a, 0, 255)).astype(np.uint8)[..., None], 3, axis=2)
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB")).copy()
    if mode != "RGB":
        im = im.convert("RGB")
    return _rgb_array(im)


@contextlib.contextmanager
def _own_pixel_limit(active: bool) -> Iterator[None]:
    """Switch Pillow's decompression-bomb guard off while the caller applies its own limit."""
    if not active:
        yield
        return
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def read_rgb(path: str | Path, exif_orientation: bool = True, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as RGB uint8 ``[H, W, 3]``; raises ``OSError``/``ValueError`` when it cannot.

    ``exif_orientation``: turn the pixels as the file's EXIF orientation tag says (as a photo viewer
    does). Datasets pass False: their label maps are drawn on the pixels as stored.
    ``max_pixels``: raise :class:`ImageTooLargeError` for an image of more pixels, before decoding it
    (0: no limit); None keeps Pillow's own guard.
    """
    with _own_pixel_limit(max_pixels is not None), Image.open(path) as im:
        width, height = im.size
        if max_pixels and width * height > max_pixels:
            raise ImageTooLargeError(f"the image is {width} x {height} = {width * height} pixels, above the limit "
                                     f"of {max_pixels} pixels")
        frames = getattr(im, "n_frames", 1)
        if frames > 1:  # Pillow opens the first page/frame; the others would be dropped without a word
            warnings.warn(f"{path} holds {frames} frames (a multi-page TIFF or an animated image); only the first "
                          "is read: save the page you mean as an image of its own", stacklevel=2)
        im.load()
        if exif_orientation:
            try:  # in place: without an orientation tag exif_transpose would return a copy of every pixel
                ImageOps.exif_transpose(im, in_place=True)
            except TypeError:  # Pillow < 9.4
                im = ImageOps.exif_transpose(im) or im
        rgb = to_rgb(im)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"unexpected decoded shape {rgb.shape}")
    return rgb


def image_size(path: str | Path) -> tuple[int, int] | None:
    """``(height, width)`` of an image file from its header (nothing decoded), or ``None`` when it cannot be read."""
    try:
        with _own_pixel_limit(True), Image.open(path) as im:
            width, height = im.size
    except (OSError, ValueError):
        return None
    return height, width


def image_extensions() -> set[str]:
    """File extensions (lower case, with the dot) that Pillow can open."""
    return {ext.lower() for ext in Image.registered_extensions()}


def write_png(image: Image.Image, file: BinaryIO) -> None:
    """Encode ``image`` as PNG into an open binary file, at :data:`PNG_COMPRESS_LEVEL` with
    :data:`PNG_ZLIB_STRATEGY`: RGB images by :func:`write_rgb_png`, the others by Pillow."""
    if image.mode == "RGB":
        write_rgb_png(file, [np.asarray(image)], image.height, image.width)
    else:
        image.save(file, format="PNG", compress_level=PNG_COMPRESS_LEVEL, compress_type=PNG_ZLIB_STRATEGY)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


# Pillow chooses a PNG filter for every row of an RGB image by trying all five, which is most of its encoding time:
# a 512 x 512 overlay took 21 ms at level 1 (15 ms of it with no compression at all), against 7 ms for the "up"
# filter alone, vectorised, and zlib; its files were 4-9 % smaller on overlays (395 / 410 kB for a
# procedural overlay, 424 / 460 kB for an overlay on a photograph), 25 % on a flat drawing (122 / 153 kB)
# (AVX-512 Xeon, 2026-12-05). Compressing is most of what is left; zlib does it without holding the GIL.
_UP_FILTER = 2


def write_rgb_png(file: BinaryIO, bands: Iterable[np.ndarray], height: int, width: int) -> None:
    """Encode an RGB image given as consecutive bands of rows (``uint8 [rows, width, 3]`` each, ``height`` rows
    in all) as PNG into an open binary file: 8 bits per channel, the "up" filter on every row, zlib at
    :data:`PNG_COMPRESS_LEVEL` with :data:`PNG_ZLIB_STRATEGY`. Only one band is held at a time."""
    if not (0 < height < 2**31 and 0 < width < 2**31):
        raise ValueError(f"a PNG is 1 to 2**31 - 1 pixels on each side, got {height} x {width}")
    file.write(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
    compressor = zlib.compressobj(PNG_COMPRESS_LEVEL, zlib.DEFLATED, 15, 8, PNG_ZLIB_STRATEGY)
    above = np.zeros((1, 3 * width), np.uint8)  # the row before the first: zeros, as the format says
    done = 0
    for band in bands:
        if band.dtype != np.uint8 or band.ndim != 3 or band.shape[1:] != (width, 3) or done + len(band) > height:
            raise ValueError(f"expected bands of uint8 [rows, {width}, 3] adding up to {height} rows; got "
                             f"{band.dtype} {tuple(band.shape)} after {done} rows")
        rows = band.reshape(len(band), 3 * width)
        filtered = np.empty((len(rows), 3 * width + 1), np.uint8)
        filtered[:, 0] = _UP_FILTER
        np.subtract(rows[:1], above, out=filtered[:1, 1:])  # uint8 arithmetic wraps modulo 256, as PNG's
        np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
        above, done = rows[-1:].copy(), done + len(rows)
        data = compressor.compress(filtered)
        if data:
            file.write(_png_chunk(b"IDAT", data))
    if done != height:
        raise ValueError(f"the bands hold {done} rows, the image {height}")
    file.write(_png_chunk(b"IDAT", compressor.flush()) + _png_chunk(b"IEND", b""))


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write ``image`` as a PNG file atomically (a temporary file in the same folder, then renamed)."""
    return atomic_write(path, lambda f: write_png(image, f))
