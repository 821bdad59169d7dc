"""Vectorised, tileable Perlin (gradient) noise for textures.

The `noise` package evaluates one point per Python call, far too slow for
the millions of texels a world texture needs. These functions evaluate whole
grids with numpy. The lattice wraps around, so a tile of noise repeats
seamlessly when it is laid edge to edge (the detail textures rely on that).
"""

from __future__ import annotations

import numpy as np


def perlin_tile(shape: tuple[int, int], cells: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """One octave of tileable gradient noise, float32 of `shape`, roughly in [-1, 1].

    `cells` (rows, columns) is the number of lattice cells across the tile;
    the gradient lattice wraps, so the tile is periodic in both directions.
    """
    height, width = shape
    cy, cx = max(1, int(cells[0])), max(1, int(cells[1]))
    angles = rng.uniform(0.0, 2 * np.pi, size=(cy, cx))
    gx, gy = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    # Sample at texel centres so that neighbouring tiles line up exactly.
    y = (np.arange(height, dtype=np.float32) + 0.5) * (cy / height)
    x = (np.arange(width, dtype=np.float32) + 0.5) * (cx / width)
    y0 = np.floor(y).astype(np.int64)
    x0 = np.floor(x).astype(np.int64)
    fy = (y - y0)[:, None]
    fx = (x - x0)[None, :]
    # Texel centres lie inside the tile, so y0 < cy and x0 < cx; only the far corners wrap.
    y1 = (y0 + 1) % cy
    # Gather gradient rows first, then columns. x0 never decreases, so gathering columns is
    # repeating each lattice column by the number of texels in its cell (a copy, not a fancy index).
    gx0, gy0, gx1, gy1 = gx[y0], gy[y0], gx[y1], gy[y1]
    per_cell = np.bincount(x0, minlength=cx)

    def corner(grad_x: np.ndarray, grad_y: np.ndarray, right: bool, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
        if right:  # the cell's right corner: the next lattice column, wrapping
            grad_x, grad_y = np.roll(grad_x, -1, axis=1), np.roll(grad_y, -1, axis=1)
        # float64, as the products with the float64 fractions fx and fy always were.
        value = np.repeat(grad_x.astype(np.float64), per_cell, axis=1)
        value *= dx
        along_y = np.repeat(grad_y.astype(np.float64), per_cell, axis=1)
        along_y *= dy
        value += along_y
        return value

    n00 = corner(gx0, gy0, False, fy, fx)
    n01 = corner(gx0, gy0, True, fy, fx - 1)
    n10 = corner(gx1, gy1, False, fy - 1, fx)
    n11 = corner(gx1, gy1, True, fy - 1, fx - 1)
    # Quintic fade: C2-continuous, so no grid lines show in the shading.
    uy = fy * fy * fy * (fy * (fy * 6 - 15) + 10)
    ux = fx * fx * fx * (fx * (fx * 6 - 15) + 10)
    # top = n00 + ux * (n01 - n00), bottom likewise, result = top + uy * (bottom - top), all in place:
    # the same float64 operations as those expressions, without a temporary array for each.
    top = n01
    top -= n00
    top *= ux
    top += n00
    bottom = n11
    bottom -= n10
    bottom *= ux
    bottom += n10
    bottom -= top
    bottom *= uy
    bottom += top
    bottom *= np.float32(1.41421356)
    return bottom.astype(np.float32)


def fractal_tile(
    shape: tuple[int, int],
    base_cells: tuple[int, int],
    rng: np.random.Generator,
    octaves: int = 4,
    persistence: float = 0.5,
) -> np.ndarray:
    """Sum of `octaves` Perlin octaves, each twice the frequency and `persistence` times the amplitude.

    Normalised to zero mean and unit standard deviation (float32), so callers
    choose the contrast explicitly.
    """
    total = np.zeros(shape, dtype=np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        scale = 2**octave
        cells = (base_cells[0] * scale, base_cells[1] * scale)
        if cells[0] > shape[0] and cells[1] > shape[1]:
            break  # finer than a texel: it would only alias
        cells = (min(cells[0], shape[0]), min(cells[1], shape[1]))
        total += np.float32(amplitude) * perlin_tile(shape, cells, rng)
        amplitude *= persistence
    total -= total.mean()
    std = float(total.std())
    return total / np.float32(std if std > 1e-9 else 1.0)


def periodic_noise_1d(count: int, cells: int, rng: np.random.Generator, octaves: int = 3) -> np.ndarray:
    """(count,) smooth periodic 1-D noise, zero mean, unit std: a horizon profile, a density along the road."""
    return fractal_tile((1, count), (1, cells), rng, octaves=octaves)[0]
