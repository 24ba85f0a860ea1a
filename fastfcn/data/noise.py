"""Smooth random textures (value noise and its fractal sum), vectorised with numpy."""

from __future__ import annotations

import numpy as np

__all__ = ["value_noise", "fractal_noise"]


def value_noise(rng: np.random.Generator, height: int, width: int, cell: tuple[float, float]) -> np.ndarray:
    """Random values on a lattice of ``cell = (cell_h, cell_w)`` pixels, smoothly interpolated; float32 in [0, 1]."""
    ch, cw = max(cell[0], 1.0), max(cell[1], 1.0)
    gh, gw = int(height / ch) + 3, int(width / cw) + 3
    grid = rng.random((gh, gw), dtype=np.float32)
    # a random sub-cell offset so that lattice lines do not line up between images
    y = np.arange(height, dtype=np.float32) / ch + rng.random(dtype=np.float32)
    x = np.arange(width, dtype=np.float32) / cw + rng.random(dtype=np.float32)
    y0, x0 = y.astype(np.int64), x.astype(np.int64)
    fy, fx = y - y0, x - x0
    fy = (fy * fy * (3 - 2 * fy))[:, None]  # smoothstep: no visible lattice creases
    fx = fx * fx * (3 - 2 * fx)
    # separable: along x on the few lattice rows first, then along y at full size
    rows = grid[:, x0] * (1 - fx) + grid[:, x0 + 1] * fx
    return rows[y0] * (1 - fy) + rows[y0 + 1] * fy


def fractal_noise(rng: np.random.Generator, height: int, width: int, cell: tuple[float, float],
                  octaves: int = 3, gain: float = 0.5) -> np.ndarray:
    """Sum of ``octaves`` value noises, each at half the cell size and ``gain`` times the amplitude; in [0, 1]."""
    total = np.zeros((height, width), dtype=np.float32)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        scale = 2.0 ** octave
        total += amplitude * value_noise(rng, height, width, (cell[0] / scale, cell[1] / scale))
        norm += amplitude
        amplitude *= gain
    return total / norm
