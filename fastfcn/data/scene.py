"""Render one procedural outdoor scene: textured stuff, objects at many scales, thin structures, a context class.

The scene is built so that the questions of the FastFCN paper matter on it:

* **stuff**: large textured regions (``sky`` with clouds above a wavy horizon, ``grass`` below it, an optional brick
  ``wall`` standing on the grass) -- easy for any model, they set the majority-class baseline;
* **objects at many scales**: ``ball``, ``box`` and ``triangle`` from a few pixels to almost half the image;
* **thin structures** (``pole``: poles, sagging wires and branches with side shoots) 3-6 px wide at 128 px (the width
  scales with the image), which an output-stride-32 feature map cannot resolve;
* **context**: ``balloon`` is drawn exactly like ``ball``, by the same code (same shape, colours, shading and
  texture), but always floats in the sky, while a ball always lies on the ground or in front of the wall. Only
  the surroundings tell the two classes apart. So that nothing else does, they come in pairs of one radius (the
  sky has less room than the ground: drawn apart, big balloons would fit less often than big balls), they are
  painted last onto free stuff (nothing occludes one, nor cuts it in two), and they lie wholly inside the image
  (no cut-off side that would say "top edge" or "bottom edge"). :mod:`fastfcn.lessons.context` checks that a
  classifier of the object's own pixels is at chance.

Everything comes from one ``numpy.random.Generator``: the same generator state gives the same scene.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np

from .noise import fractal_noise, value_noise

__all__ = ["CLASSES", "COLOURS", "SCALE_PX", "THIN_WIDTH_PX", "ROUND_RADIUS", "SCENE_VERSION", "SKY", "GRASS",
           "WALL", "BALL", "BALLOON", "BOX", "TRIANGLE", "POLE", "render_scene"]

CLASSES = ["sky", "grass", "wall", "ball", "balloon", "box", "triangle", "pole"]
SKY, GRASS, WALL, BALL, BALLOON, BOX, TRIANGLE, POLE = range(len(CLASSES))
# display colours for the label maps (for ``colorize(mask, colours=COLOURS)``; none is black = ignore)
COLOURS = np.array([[135, 190, 235], [60, 160, 60], [150, 90, 60], [255, 150, 0], [230, 40, 200],
                    [250, 230, 40], [120, 70, 200], [255, 255, 255]], dtype=np.uint8)

SCALE_PX = 128.0  # the image side at which the sizes below hold; they scale with min(H, W) / SCALE_PX
THIN_WIDTH_PX = (3.0, 6.0)  # width of thin structures at a SCALE_PX image
ROUND_RADIUS = (0.025, 0.16)  # radius of balls and balloons, a fraction of min(H, W) (log-uniform, before fitting)
# raise whenever render_scene draws other pixels for the same generator state, so that anything keyed on the
# procedural data (trained runs, cached results) can tell the scenes of two versions apart
# (2: balls and balloons in pairs of one radius, painted last, unoccluded and inside the image)
SCENE_VERSION = 2


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


class _Canvas:
    """An RGB float image, its label map, and pixel-centre coordinates; shapes are painted into bounding boxes."""

    def __init__(self, height: int, width: int) -> None:
        self.h, self.w = height, width
        self.image = np.zeros((height, width, 3), dtype=np.float32)
        self.label = np.zeros((height, width), dtype=np.int64)
        self.ys = np.arange(height, dtype=np.float32) + 0.5
        self.xs = np.arange(width, dtype=np.float32) + 0.5

    def box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[slice, slice] | None:
        r0, r1 = max(int(math.floor(y0)), 0), min(int(math.ceil(y1)) + 1, self.h)
        c0, c1 = max(int(math.floor(x0)), 0), min(int(math.ceil(x1)) + 1, self.w)
        if r0 >= r1 or c0 >= c1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def grid(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        return self.ys[rows, None], self.xs[None, cols]

    def paint(self, rows: slice, cols: slice, inside: np.ndarray, colour: np.ndarray, cls: int) -> None:
        """Set pixels where ``inside`` (bbox-shaped bool) to ``colour`` (bbox-shaped [.., 3] or [3]) and ``cls``."""
        if colour.ndim == 3:
            colour = colour[inside]
        self.image[rows, cols][inside] = colour
        self.label[rows, cols][inside] = cls


def _paint_stuff(rng: np.random.Generator, cv: _Canvas, unit: float, detail: np.ndarray) -> np.ndarray:
    """Sky, grass and maybe a wall; returns the horizon height per column, shape [W]."""
    h, w = cv.h, cv.w
    ys, xs = cv.ys[:, None], cv.xs[None, :]
    base = rng.uniform(0.3, 0.6) * h
    amp = rng.uniform(0.0, 0.07) * h
    freq = rng.uniform(0.5, 2.5) * 2 * math.pi / w
    tilt = rng.uniform(-0.15, 0.15) * h / w
    horizon = base + amp * np.sin(freq * xs + rng.uniform(0, 2 * math.pi)) + tilt * (xs - w / 2)
    sky = ys < horizon

    # sky: a vertical gradient towards a pale horizon, with soft clouds
    hue = rng.uniform(0.54, 0.66)
    top = _hsv(hue, rng.uniform(0.45, 0.8), rng.uniform(0.55, 0.85))
    low = _hsv(hue, rng.uniform(0.1, 0.3), rng.uniform(0.85, 1.0))
    t = np.clip(ys / max(float(horizon.max()), 1.0), 0, 1)[..., None]
    sky_rgb = top * (1 - t) + low * t
    clouds = _smoothstep(0.45, 0.8, fractal_noise(rng, h, w, (h / 2.5, w / 1.2), octaves=3))
    clouds = (clouds * rng.uniform(0.3, 0.95))[..., None]
    sky_rgb = sky_rgb * (1 - clouds) + np.float32(0.97) * clouds

    # grass: blades (fine across, long downwards) over large light/dark patches
    grass = _hsv(rng.uniform(0.2, 0.36), rng.uniform(0.45, 0.85), rng.uniform(0.35, 0.65))
    blades = value_noise(rng, h, w, (5.0 * unit, 1.3 * unit))
    patches = fractal_noise(rng, h, w, (h / 3, w / 3), octaves=2)
    grass_rgb = grass * (0.55 + 0.45 * blades + 0.35 * patches)[..., None]

    cv.image[:] = np.where(sky[..., None], sky_rgb, grass_rgb)
    cv.label[:] = np.where(sky, SKY, GRASS)

    if rng.random() < 0.65:
        _paint_wall(rng, cv, unit, horizon[0], detail)
    return horizon[0]


def _paint_wall(rng: np.random.Generator, cv: _Canvas, unit: float, horizon: np.ndarray,
                detail: np.ndarray) -> None:
    h, w = cv.h, cv.w
    width = rng.uniform(0.2, 0.65) * w
    x0 = rng.uniform(-0.1 * w, w - 0.5 * width)
    x1 = x0 + width
    cols = slice(max(int(x0), 0), min(int(x1) + 1, w))
    ground = float(horizon[cols].max())
    bottom = ground + rng.uniform(0.05, 0.35) * (h - ground)
    top = float(horizon[cols].min()) - rng.uniform(0.08, 0.4) * h
    area = cv.box(x0, top, x1, bottom)
    if area is None:
        return
    rows, cols = area
    ys, xs = cv.grid(rows, cols)
    inside = (ys >= top) & (ys < bottom) & (xs >= x0) & (xs < x1)
    brick_h = rng.uniform(5.0, 10.0) * unit
    brick_w = brick_h * rng.uniform(1.8, 3.2)
    mortar = max(1.0, 0.14 * brick_h)
    row = np.floor((ys - top) / brick_h)
    u = xs - x0 + (row % 2) * brick_w / 2
    col = np.floor(u / brick_w)
    tints = rng.random((int(row.max()) + 2, int(col.max()) + 2), dtype=np.float32)
    tint = tints[row.astype(np.int64).clip(0), col.astype(np.int64).clip(0)]
    is_mortar = (((ys - top) % brick_h) < mortar) | ((u % brick_w) < mortar)
    if rng.random() < 0.6:  # red-brown bricks, else grey stone
        stone = _hsv(rng.uniform(0.0, 0.08), rng.uniform(0.35, 0.7), rng.uniform(0.45, 0.8))
    else:
        stone = _hsv(rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.12), rng.uniform(0.45, 0.75))
    fine = detail[rows, cols][..., None]
    rgb = stone * (0.75 + 0.35 * tint[..., None]) * (0.8 + 0.35 * fine)
    rgb = np.where(is_mortar[..., None], np.float32(0.78) * (0.9 + 0.2 * fine), rgb)
    cv.paint(rows, cols, inside, rgb, WALL)


def _object_colour(rng: np.random.Generator) -> np.ndarray:
    """One colour distribution shared by all objects (balls and balloons in particular)."""
    return _hsv(rng.uniform(0, 1), rng.uniform(0.45, 0.95), rng.uniform(0.55, 1.0))


def _place_round(rng: np.random.Generator, cv: _Canvas, want_sky: bool, r: float,
                 tries: int = 25) -> tuple[float, float] | None:
    """A centre for a disc of radius ``r`` wholly inside the image, whose disc and surroundings (out to
    ``1.15 r + 2`` px) are all sky (``want_sky``) or all grass/wall in the label map painted so far."""
    reach = 1.15 * r + 2.0
    if 2 * r >= min(cv.w, cv.h):
        return None
    for _ in range(tries):
        cx, cy = rng.uniform(r, cv.w - r), rng.uniform(r, cv.h - r)
        area = cv.box(cx - reach, cy - reach, cx + reach, cy + reach)
        if area is None:
            continue
        rows, cols = area
        ys, xs = cv.grid(rows, cols)
        near = (xs - cx) ** 2 + (ys - cy) ** 2 <= reach * reach
        found = cv.label[rows, cols][near]
        if (found == SKY).all() if want_sky else ((found == GRASS) | (found == WALL)).all():
            return cx, cy
    return None


def _paint_rounds(rng: np.random.Generator, cv: _Canvas, size: float, detail: np.ndarray) -> None:
    """1-3 pairs of one ball and one balloon of the same radius, each with its own colour and light.

    A radius is kept only when both fit (else it is drawn again, up to three times), so whatever the room in the
    sky does to the sizes that fit, it does to both classes alike.
    """
    lo, hi = math.log(ROUND_RADIUS[0]), math.log(ROUND_RADIUS[1])
    for _ in range(int(rng.integers(1, 4))):
        for _attempt in range(3):
            r = size * math.exp(rng.uniform(lo, hi))
            ball, balloon = _place_round(rng, cv, False, r), _place_round(rng, cv, True, r)
            if ball is not None and balloon is not None:
                _paint_ball(rng, cv, *ball, r, BALL, detail)
                _paint_ball(rng, cv, *balloon, r, BALLOON, detail)
                break


def _paint_ball(rng: np.random.Generator, cv: _Canvas, cx: float, cy: float, r: float, cls: int,
                detail: np.ndarray) -> None:
    """A shaded sphere: the one drawing of both look-alikes (colour, light and highlight drawn here, per object)."""
    area = cv.box(cx - r, cy - r, cx + r, cy + r)
    if area is None:
        return
    rows, cols = area
    ys, xs = cv.grid(rows, cols)
    dx, dy = (xs - cx) / r, (ys - cy) / r
    d2 = dx * dx + dy * dy
    inside = d2 <= 1.0
    z = np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
    lx, ly = rng.uniform(-0.6, 0.0), rng.uniform(-0.7, -0.2)
    lz = math.sqrt(max(1.0 - lx * lx - ly * ly, 0.0))
    lambert = np.clip(dx * lx + dy * ly + z * lz, 0.0, 1.0)
    spec = lambert ** 24 * rng.uniform(0.2, 0.6)
    colour = _object_colour(rng)
    rgb = colour * (0.3 + 0.7 * lambert)[..., None] * (0.92 + 0.16 * detail[rows, cols])[..., None]
    rgb = rgb + spec[..., None]
    cv.paint(rows, cols, inside, rgb, cls)


def _paint_polygon(cv: _Canvas, corners: np.ndarray, colour: np.ndarray, cls: int, detail: np.ndarray,
                   shade: np.ndarray) -> None:
    """A convex polygon (corners [K, 2] as x, y, any orientation) with a linear shading along ``shade``."""
    area = cv.box(*corners.min(0), *corners.max(0))
    if area is None:
        return
    rows, cols = area
    ys, xs = cv.grid(rows, cols)
    (ax, ay), (bx, by), (cx, cy) = corners[0], corners[1], corners[2]
    sign = 1.0 if (bx - ax) * (cy - by) - (by - ay) * (cx - bx) >= 0 else -1.0
    inside = np.ones((ys.shape[0], xs.shape[1]), dtype=bool)
    for a, b in zip(corners, np.roll(corners, -1, axis=0), strict=True):
        inside &= sign * ((b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0])) >= 0
    centre = corners.mean(0)
    extent = float(np.abs(corners - centre).max()) + 1e-6
    t = ((xs - centre[0]) * shade[0] + (ys - centre[1]) * shade[1]) / extent
    rgb = colour * (0.85 + 0.2 * t)[..., None] * (0.9 + 0.2 * detail[rows, cols])[..., None]
    cv.paint(rows, cols, inside, rgb, cls)


def _rotate(points: np.ndarray, angle: float, centre: np.ndarray) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return (points - centre) @ np.array([[c, s], [-s, c]], dtype=np.float32) + centre


def _paint_box(rng: np.random.Generator, cv: _Canvas, size: float, horizon: np.ndarray,
               detail: np.ndarray) -> None:
    bw = size * math.exp(rng.uniform(math.log(0.05), math.log(0.4)))
    bh = bw * math.exp(rng.uniform(-0.6, 0.6))
    cx = rng.uniform(0, cv.w)
    cy = rng.uniform(float(horizon.mean()) - 0.25 * cv.h, cv.h)
    corners = np.array([[-bw, -bh], [bw, -bh], [bw, bh], [-bw, bh]], dtype=np.float32) / 2 + [cx, cy]
    corners = _rotate(corners, rng.uniform(-0.5, 0.5), np.array([cx, cy], dtype=np.float32))
    angle = rng.uniform(0, 2 * math.pi)
    _paint_polygon(cv, corners, _object_colour(rng), BOX, detail, np.array([math.cos(angle), math.sin(angle)]))


def _paint_triangle(rng: np.random.Generator, cv: _Canvas, size: float, horizon: np.ndarray,
                    detail: np.ndarray) -> None:
    base = size * math.exp(rng.uniform(math.log(0.06), math.log(0.45)))
    height = base * rng.uniform(0.5, 1.2)
    cx = rng.uniform(0, cv.w)
    by = rng.uniform(float(horizon.mean()), cv.h + 0.2 * height)
    apex = rng.uniform(-0.3, 0.3) * base
    corners = np.array([[cx - base / 2, by], [cx + base / 2, by], [cx + apex, by - height]], dtype=np.float32)
    corners = _rotate(corners, rng.uniform(-0.3, 0.3), corners.mean(0))
    _paint_polygon(cv, corners, _object_colour(rng), TRIANGLE, detail, np.array([0.7, -0.7]))


def _paint_segment(cv: _Canvas, a: tuple[float, float], b: tuple[float, float], width: float,
                   colour: np.ndarray, detail: np.ndarray) -> None:
    (ax, ay), (bx, by) = a, b
    pad = width
    area = cv.box(min(ax, bx) - pad, min(ay, by) - pad, max(ax, bx) + pad, max(ay, by) + pad)
    if area is None:
        return
    rows, cols = area
    ys, xs = cv.grid(rows, cols)
    vx, vy = bx - ax, by - ay
    t = np.clip(((xs - ax) * vx + (ys - ay) * vy) / max(vx * vx + vy * vy, 1e-6), 0.0, 1.0)
    dist2 = (xs - ax - t * vx) ** 2 + (ys - ay - t * vy) ** 2
    inside = dist2 <= (width / 2) ** 2
    rgb = colour * (0.8 + 0.4 * detail[rows, cols])[..., None]
    cv.paint(rows, cols, inside, rgb, POLE)


def _paint_wire(rng: np.random.Generator, cv: _Canvas, width: float, horizon: np.ndarray,
                detail: np.ndarray) -> None:
    """A wire sagging across the whole image, in the sky: lowest at ``xm``, rising towards both ends."""
    sky_floor = float(horizon.min())
    y_low = rng.uniform(0.1, 0.85) * sky_floor
    sag = rng.uniform(0.02, 0.25) * cv.h
    xm = rng.uniform(0.2, 0.8) * cv.w
    xs = cv.xs[None, :]
    curve = y_low - 4 * sag * ((xs - xm) / cv.w) ** 2
    slope = -8 * sag * (xs - xm) / cv.w ** 2
    top, bottom = float(curve.min()) - width, float(curve.max()) + width
    area = cv.box(0, top, cv.w, bottom)
    if area is None:
        return
    rows, cols = area
    ys = cv.ys[rows, None]
    inside = np.abs(ys - curve) <= (width / 2) * np.sqrt(1 + slope ** 2)
    colour = _hsv(0, 0, rng.uniform(0.05, 0.3))
    rgb = colour * (0.8 + 0.4 * detail[rows, cols])[..., None]
    cv.paint(rows, cols, inside, rgb, POLE)


def _paint_thin(rng: np.random.Generator, cv: _Canvas, unit: float, horizon: np.ndarray,
                detail: np.ndarray) -> None:
    width = rng.uniform(*THIN_WIDTH_PX) * unit
    kind = rng.integers(3)
    if kind == 0:  # a pole standing on the ground, reaching into the sky
        x = rng.uniform(0.05, 0.95) * cv.w
        ground = float(horizon[min(int(x), cv.w - 1)])
        y_bottom = rng.uniform(ground, cv.h)
        y_top = rng.uniform(-0.1 * cv.h, max(ground - 0.1 * cv.h, 0.0))
        lean = rng.uniform(-0.1, 0.1) * (y_bottom - y_top)
        colour = _hsv(rng.uniform(0.05, 0.12), rng.uniform(0.2, 0.6), rng.uniform(0.15, 0.45))
        _paint_segment(cv, (x, y_bottom), (x + lean, y_top), width, colour, detail)
    elif kind == 1:
        _paint_wire(rng, cv, width, horizon, detail)
    else:  # a branch growing in from one side, with one or two side shoots
        left = rng.random() < 0.5
        x0 = -width if left else cv.w + width
        y0 = rng.uniform(0.05, 0.9) * cv.h
        length = rng.uniform(0.35, 0.75) * cv.w
        angle = rng.uniform(-0.4, 0.4) + (0.0 if left else math.pi)
        x1, y1 = x0 + length * math.cos(angle), y0 + length * math.sin(angle)
        colour = _hsv(rng.uniform(0.05, 0.1), rng.uniform(0.4, 0.7), rng.uniform(0.2, 0.45))
        _paint_segment(cv, (x0, y0), (x1, y1), width, colour, detail)
        shoot_width = max(THIN_WIDTH_PX[0] * unit, 0.75 * width)
        for _ in range(rng.integers(1, 3)):
            t = rng.uniform(0.3, 0.85)
            sx, sy = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            side = angle + rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 0.9)
            sl = rng.uniform(0.2, 0.45) * length
            _paint_segment(cv, (sx, sy), (sx + sl * math.cos(side), sy + sl * math.sin(side)), shoot_width,
                           colour, detail)


def render_scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One scene: ``(uint8 RGB image [H, W, 3], int64 labels [H, W])`` with labels indexing :data:`CLASSES`."""
    if height < 8 or width < 8:
        raise ValueError(f"procedural scenes need at least 8x8 pixels, got {height}x{width}")
    cv = _Canvas(height, width)
    size = float(min(height, width))
    unit = size / SCALE_PX
    detail = value_noise(rng, height, width, (2.0 * unit, 2.0 * unit))

    horizon = _paint_stuff(rng, cv, unit, detail)
    for _ in range(int(rng.integers(0, 4))):
        _paint_box(rng, cv, size, horizon, detail)
    for _ in range(int(rng.integers(0, 3))):
        _paint_triangle(rng, cv, size, horizon, detail)
    for _ in range(int(rng.integers(1, 4))):
        _paint_thin(rng, cv, unit, horizon, detail)
    # balls on the ground and balloons in the sky, last: identical appearance, told apart by their surroundings
    _paint_rounds(rng, cv, size, detail)

    # global exposure, a slight colour cast, and sensor noise
    gain = rng.uniform(0.85, 1.1) * (1 + rng.uniform(-0.05, 0.05, size=3)).astype(np.float32)
    image = cv.image * gain + rng.standard_normal((height, width, 3), dtype=np.float32) * np.float32(0.02)
    image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return image, cv.label
