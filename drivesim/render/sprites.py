"""Procedural billboard images: trees, bushes, delineator posts, chevron signs, cones.

Each sprite is drawn once per scene at twice its stored resolution and
averaged down, so its outline is antialiased. A sprite is premultiplied-free
RGBA float32 in [0, 1] with its physical size; it stands on its bottom-centre
point. Colours here are surface colours; lighting is applied per episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from drivesim.render.noise import fractal_tile


@dataclass(frozen=True)
class Sprite:
    """One billboard image and its size in the world."""

    name: str
    """Kind of object: tree, conifer, bush, group (of trees), post, chevron_left, chevron_right, cone."""
    rgba: np.ndarray
    """(h, w, 4) float32 in [0, 1]; straight (not premultiplied) alpha."""
    height: float
    """Height of the object for a scale of 1 [m]; placements scale it."""

    @property
    def rgba8(self) -> np.ndarray:
        """The image as uint8 RGBA, straight alpha."""
        return np.clip(self.rgba * 255 + 0.5, 0, 255).astype(np.uint8)

    @property
    def aspect(self) -> float:
        """Width over height [-]."""
        return self.rgba.shape[1] / self.rgba.shape[0]


def _finish(name: str, rgb: np.ndarray, alpha: np.ndarray, height: float) -> Sprite:
    h, w = alpha.shape
    rgba = np.dstack([np.clip(rgb, 0, 1) * alpha[..., None], alpha]).astype(np.float32)
    # Average premultiplied colour so edge texels do not pick up the (black) background.
    small = cv2.resize(rgba, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    a = small[..., 3:4]
    small[..., :3] = np.where(a > 1e-4, small[..., :3] / np.maximum(a, 1e-4), 0.0)
    return Sprite(name, small, height)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised coordinates: x in [-1, 1] left to right, y in [0, 1] bottom to top."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return (x + 0.5) / w * 2 - 1, 1 - (y + 0.5) / h


def _shade(h: int, w: int, rng: np.random.Generator, cells: int, strength: float) -> np.ndarray:
    return 1 + strength * fractal_tile((h, w), (cells, max(1, cells * w // h)), rng, octaves=4) / 3


def deciduous_tree(rng: np.random.Generator, size: int = 128) -> Sprite:
    """A broadleaf tree: a trunk under a lumpy crown, lit from above."""
    h, w = 2 * size, int(2 * size * 0.8)
    x, y = _grid(h, w)
    trunk = (np.abs(x) < 0.07 + 0.03 * (0.35 - y).clip(0)) & (y < 0.45)
    crown = np.zeros((h, w), bool)
    for _ in range(14):
        cx, cy = rng.normal(0, 0.32), rng.uniform(0.45, 0.8)
        r = rng.uniform(0.18, 0.32)
        crown |= (x - cx) ** 2 / 0.8**2 * 0.64 + (y - cy) ** 2 * 1.6 < r**2 * 1.4
    crown &= np.abs(x) < 0.98
    leaf = np.array([0.22, 0.36, 0.14]) * rng.uniform(0.8, 1.15)
    light = (0.65 + 0.55 * (y - 0.4).clip(0, 0.6) / 0.6)[..., None] * _shade(h, w, rng, 6, 0.9)[..., None]
    rgb = np.where(crown[..., None], leaf * light, np.array([0.30, 0.22, 0.15]) * _shade(h, w, rng, 3, 0.4)[..., None])
    return _finish("tree", rgb, (crown | trunk).astype(np.float32), rng.uniform(7.0, 10.0))


def conifer_tree(rng: np.random.Generator, size: int = 128) -> Sprite:
    """A spruce: tiers of drooping branches narrowing to the top."""
    h, w = 2 * size, int(2 * size * 0.5)
    x, y = _grid(h, w)
    tiers = rng.uniform(6, 9)
    sawtooth = (y * tiers) % 1.0
    width = (1.0 - y) * (0.55 + 0.45 * sawtooth) * (1 + 0.15 * fractal_tile((h, 1), (8, 1), rng, octaves=3))
    crown = (np.abs(x) < width) & (y > 0.08)
    trunk = (np.abs(x) < 0.08) & (y <= 0.12)
    needles = np.array([0.12, 0.24, 0.13]) * rng.uniform(0.8, 1.2)
    light = (0.7 + 0.4 * y + 0.25 * x)[..., None] * _shade(h, w, rng, 10, 0.8)[..., None]
    rgb = np.where(crown[..., None], needles * light, np.array([0.28, 0.2, 0.14]))
    return _finish("conifer", rgb, (crown | trunk).astype(np.float32), rng.uniform(9.0, 14.0))


def bush(rng: np.random.Generator, size: int = 64) -> Sprite:
    """A low shrub."""
    h, w = 2 * size, int(2 * size * 1.6)
    x, y = _grid(h, w)
    body = np.zeros((h, w), bool)
    for _ in range(8):
        cx, cy, r = rng.uniform(-0.5, 0.5), rng.uniform(0.25, 0.55), rng.uniform(0.25, 0.45)
        body |= ((x - cx) * 1.6) ** 2 + (y - cy) ** 2 < r**2
    body &= y > 0.0
    green = np.array([0.25, 0.36, 0.15]) * rng.uniform(0.8, 1.2)
    light = (0.6 + 0.6 * y)[..., None] * _shade(h, w, rng, 5, 0.9)[..., None]
    return _finish("bush", green * light, body.astype(np.float32), rng.uniform(0.8, 1.4))


def delineator_post(rng: np.random.Generator, size: int = 64) -> Sprite:
    """A white roadside post with a black band and an amber reflector."""
    h, w = 2 * size, 2 * 8
    x, y = _grid(h, w)
    rgb = np.ones((h, w, 3)) * np.array([0.92, 0.92, 0.9]) * (0.9 + 0.1 * x[..., None])
    band = (y > 0.72) & (y < 0.9)
    rgb[band] = 0.08
    reflector = (y > 0.76) & (y < 0.86) & (np.abs(x) < 0.5)
    rgb[reflector] = [1.0, 0.55, 0.05]
    return _finish("post", rgb, np.ones((h, w), np.float32), 1.0)


def chevron_sign(rng: np.random.Generator, left: bool, size: int = 64) -> Sprite:
    """A curve-warning chevron board on a post; `left` points the chevron left (a left bend)."""
    h, w = 2 * size, 2 * size * 3 // 4
    x, y = _grid(h, w)
    board = (y > 0.45) & (np.abs(x) < 0.95)
    post = (np.abs(x) < 0.08) & (y <= 0.45)
    rgb = np.zeros((h, w, 3))
    rgb[...] = [0.45, 0.45, 0.45]
    rgb[board] = [0.95, 0.8, 0.1] if rng.random() < 0.5 else [0.95, 0.95, 0.95]
    direction = 1 if left else -1
    yc = 0.72
    chevron = board & (np.abs((direction * x) + 0.25 - 0.9 * np.abs(y - yc)) < 0.22)
    rgb[chevron] = [0.05, 0.05, 0.05]
    return _finish("chevron_left" if left else "chevron_right", rgb, (board | post).astype(np.float32), 1.6)


def traffic_cone(rng: np.random.Generator, size: int = 48) -> Sprite:
    """An orange cone with a white reflective band."""
    h, w = 2 * size, 2 * size * 2 // 3
    x, y = _grid(h, w)
    body = (np.abs(x) < 0.22 + 0.6 * (1 - y)) & (y > 0.06) & (y < 0.98)
    base = (y <= 0.06) & (np.abs(x) < 0.95)
    rgb = np.zeros((h, w, 3))
    rgb[...] = [1.0, 0.38, 0.05]
    rgb *= (0.85 + 0.2 * x)[..., None]
    rgb[(y > 0.5) & (y < 0.66)] = [0.95, 0.95, 0.95]
    rgb[base] = [0.12, 0.12, 0.12]
    return _finish("cone", rgb, (body | base).astype(np.float32), 0.75)


def tree_group(rng: np.random.Generator, trees: list[Sprite], size: int = 128) -> Sprite:
    """Several trees side by side as one billboard: a stretch of forest edge drawn at the cost of one object."""
    count = int(rng.integers(3, 7))
    members = [trees[int(i)] for i in rng.integers(0, len(trees), count)]
    scales = rng.uniform(0.65, 1.0, count)
    tallest = max(m.height * k for m, k in zip(members, scales, strict=True))
    pixels_per_metre = size / tallest
    widths = [int(m.aspect * m.height * k * pixels_per_metre) for m, k in zip(members, scales, strict=True)]
    canvas = np.zeros((size, int(sum(widths) * 0.7) + max(widths), 4), np.float32)
    x = 0
    for member, k, w in sorted(zip(members, scales, widths, strict=True), key=lambda item: -item[1]):  # small trees in front
        h = max(2, int(member.height * k * pixels_per_metre))
        image = cv2.resize(member.rgba, (max(1, w), h), interpolation=cv2.INTER_AREA)
        alpha = image[..., 3:4]
        region = canvas[size - h :, x : x + image.shape[1]]
        region[..., :3] = image[..., :3] * alpha + region[..., :3] * (1 - alpha)
        region[..., 3:] = alpha + region[..., 3:] * (1 - alpha)
        x += int(w * rng.uniform(0.5, 0.8))
    canvas = canvas[:, : max(x + widths[-1], 1)]
    used = np.nonzero(canvas[..., 3].max(axis=0) > 0.01)[0]
    canvas = np.ascontiguousarray(canvas[:, used.min() : used.max() + 1])
    return Sprite("group", canvas, tallest)


def make_sprites(rng: np.random.Generator) -> list[Sprite]:
    """The sprite set of one scene: a few variants of each tree kind, tree groups, then road furniture."""
    broadleaf = [deciduous_tree(rng) for _ in range(3)]
    conifers = [conifer_tree(rng) for _ in range(3)]
    sprites = broadleaf + conifers + [bush(rng) for _ in range(2)]
    sprites += [tree_group(rng, broadleaf) for _ in range(2)] + [tree_group(rng, conifers) for _ in range(2)]
    sprites += [tree_group(rng, broadleaf + conifers) for _ in range(2)]
    sprites += [delineator_post(rng), chevron_sign(rng, True), chevron_sign(rng, False), traffic_cone(rng)]
    return sprites
