"""`Scene`: everything about a track's appearance that is built once per track.

A full-colour top-down texture fine enough for the near field (a few cm per
texel) would be gigabytes for a 1 km track. The world texture is therefore
stored factored:

* a **road field** over the track's bounding box at `field_resolution`
  (0.5 m), four uint16 channels per texel: the signed lateral offset from
  the centreline (cm, clipped to +-`FIELD_CLIP` and shifted by it), the
  distance along the road to the nearest dash centre (cm), a variation level
  (Perlin noise: patches of brighter or yellower ground, worn paint) and a
  zero pad (OpenCV warps 4-channel images far faster than 3-channel ones).
  The first two are smooth functions of position, so bilinear sampling gives
  centimetre-accurate line edges from half-metre texels; the colours come
  from a per-episode lookup table indexed by them (see `look.py`). The
  offset is signed because |offset| has a kink on the centreline that
  bilinear sampling would flatten (losing the centre line); for a simple
  closed loop the signed offset is continuous everywhere, being the signed
  distance to the loop (inside is left for a counter-clockwise loop);
* a tileable **detail texture** (Perlin grain, `detail_resolution` per texel)
  laid over the ground in world coordinates;
* the **billboards** and a periodic **horizon profile** (distant hills and
  tree line).

Nothing here depends on the episode's randomization, so one Scene serves
every episode on its track; per-episode looks are cached on it (`cache`).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import cv2
import numpy as np

from drivesim.render.billboards import Billboards, place_billboards
from drivesim.render.noise import fractal_tile, periodic_noise_1d
from drivesim.render.sprites import make_sprites
from drivesim.track.geometry import Track

FIELD_CLIP = 16.0
"""Lateral offsets beyond +-this are stored as +-this [m]: all is grass there."""
FIELD_MARGIN = 60.0
"""The road field extends this far beyond the road's bounding box [m]."""
DASH_PERIOD = 12.0
"""Nominal centre-line dash period (dash plus gap) [m]; stretched so a whole number fit the lap."""
VARIATION_LEVELS = 8
"""Number of distinct surface-variation values (channel 2 stores the level, 0 to VARIATION_LEVELS - 1)."""
_LEVEL_QUANTILES = np.array([NormalDist().inv_cdf(k / VARIATION_LEVELS) for k in range(1, VARIATION_LEVELS)])
"""Standard-normal quantiles that cut it into VARIATION_LEVELS equally likely levels."""
DETAIL_PERIOD = 16.0
"""The detail texture repeats every this many metres [m]."""
DETAIL_SEED = 0xD37A11
"""Seed of the one detail texture all scenes share."""
CHUNK = 200_000
"""Texels processed at once while building, to bound temporary memory."""
GUESS_SCALE = 2
"""The road field's nearest-centreline-point guesses are made on a grid this many times coarser."""
HORIZON_SAMPLES = 2048
"""Azimuth samples of the horizon profile over a full turn."""


@dataclass(eq=False)
class Scene:
    """A track's world texture (factored, see module docs), billboards and horizon. Build with `build_scene`."""

    track: Track
    """The road this scene dresses."""
    seed: int
    """The track's scenery seed (`scene_seed`); the scenery is drawn from it unless `build_scene` got an rng."""
    origin: tuple[float, float]
    """World (x, y) of the centre of road-field texel [0, 0] [m]."""
    field_resolution: float
    """Road-field texel size [m]."""
    field: np.ndarray
    """(rows, cols, 4) uint16 road field; row index grows with y, column with x."""
    dash_period: float
    """Centre-line dash period actually used on this track [m]."""
    detail: np.ndarray
    """(n, n) float32 tileable detail texture, zero mean, unit standard deviation."""
    detail_resolution: float
    """Detail texel size [m]."""
    billboards: Billboards
    """Roadside objects."""
    hills: np.ndarray
    """(HORIZON_SAMPLES,) elevation of distant hills over azimuth 0..2pi [rad]."""
    treeline: np.ndarray
    """(HORIZON_SAMPLES,) elevation of the nearer tree line over azimuth [rad]; <= 0 where there is none."""
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    """Per-episode looks built for this scene (see `look.get_look`)."""

    @property
    def field_border(self) -> tuple[float, float, float, float]:
        """Road-field value outside the field: outside the loop far from the road, no dash, middle variation."""
        return (float(self.field[0, 0, 0]), float(self.field[0, 0, 1]), float(VARIATION_LEVELS // 2), 0.0)

    def nbytes(self) -> int:
        """Memory held by the scene's arrays, cached looks included [bytes]."""
        total = self.field.nbytes + self.detail.nbytes + sum(s.rgba.nbytes for s in self.billboards.sprites)
        looks = {id(look): look for key, look in self.cache.items() if key != "last"}
        return total + sum(look.nbytes() for look in looks.values())


def scene_seed(track: Track) -> int:
    """The track's generator seed, or for a loaded track a hash of its centreline bytes."""
    if track.seed is not None:
        return int(track.seed)
    digest = hashlib.sha256(np.ascontiguousarray(track.centreline, dtype=np.float64).tobytes()).digest()
    return int.from_bytes(digest[:4], "little")


def build_scene(
    track: Track,
    rng: np.random.Generator | None = None,
    field_resolution: float = 0.5,
    detail_resolution: float = 0.02,
) -> Scene:
    """Build the scene of `track`. Scenery is drawn from `rng`, by default seeded by `scene_seed(track)`.

    `field_resolution` [m] bounds how sharp line edges stay (bilinear sampling
    quantizes positions to 1/32 texel); `detail_resolution` [m] is the finest
    grain of the surface texture. The defaults suit 160x120 to 800x600 images.
    """
    seed = scene_seed(track)
    if rng is None:
        rng = np.random.default_rng([seed, 0x5CE7E])
    field, origin, dash_period = _road_field(track, field_resolution, rng)
    detail = detail_texture(int(round(DETAIL_PERIOD / detail_resolution)), int(round(DETAIL_PERIOD / 1.5)))
    billboards = place_billboards(track, make_sprites(rng), rng)
    # Rolling hills 0.1-3 degrees high (no clipping: clipped noise makes flat-topped mesas).
    hills = np.maximum(0.002, (0.014 + 0.01 * periodic_noise_1d(HORIZON_SAMPLES, 6, rng, octaves=3)) * rng.uniform(0.5, 1.6))
    forest = periodic_noise_1d(HORIZON_SAMPLES, 7, rng, octaves=2) + rng.uniform(-0.6, 0.8)
    ragged = periodic_noise_1d(HORIZON_SAMPLES, 400, rng, octaves=2)
    treeline = np.where(forest > 0, 0.006 + 0.004 * np.clip(forest, 0, 1) + 0.0015 * ragged, -1.0)
    return Scene(
        track=track,
        seed=seed,
        origin=origin,
        field_resolution=field_resolution,
        field=field,
        dash_period=dash_period,
        detail=detail,
        detail_resolution=detail_resolution,
        billboards=billboards,
        hills=hills.astype(np.float32),
        treeline=treeline.astype(np.float32),
    )


def _road_field(track: Track, resolution: float, rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float], float]:
    xmin, ymin, xmax, ymax = track.bounds
    x0, y0 = xmin - FIELD_MARGIN, ymin - FIELD_MARGIN
    cols = int(np.ceil((xmax - xmin + 2 * FIELD_MARGIN) / resolution)) + 1
    rows = int(np.ceil((ymax - ymin + 2 * FIELD_MARGIN) / resolution)) + 1
    field = np.empty((rows, cols, 4), np.uint16)
    # A whole number of dash periods per lap, so the pattern is continuous across the start line.
    dash_period = track.length / max(1, round(track.length / DASH_PERIOD))
    # Away from the road: as far from a dash as the pattern gets (half a period), the largest distance the
    # renderer's dash tables cover.
    field[..., 1] = round(dash_period * 50)
    # Far from the road the offset is +-FIELD_CLIP: left of travel is inside a counter-clockwise loop.
    shift = 4  # sub-texel precision of rasterized outlines
    inside = np.zeros((rows, cols), np.uint8)
    cv2.fillPoly(inside, [np.round((track.centreline - (x0, y0)) / resolution * (1 << shift)).astype(np.int32)], 1, cv2.LINE_8, shift)
    x, y = track.centreline[:, 0], track.centreline[:, 1]
    counter_clockwise = float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) > 0
    left = inside if counter_clockwise else 1 - inside
    np.multiply(left, np.uint16(2 * FIELD_CLIP * 100), out=field[..., 0], casting="unsafe")
    del inside, left

    # Only texels near the road need an exact distance: rasterize the corridor, project those.
    corridor = track.polygon(margin=FIELD_CLIP - track.width / 2 + 2 * resolution)
    polygons = getattr(corridor, "geoms", [corridor])
    mask = np.zeros((rows, cols), np.uint8)
    for polygon in polygons:
        rings = [polygon.exterior, *polygon.interiors]
        contours = [np.round((np.asarray(r.coords) - (x0, y0)) / resolution * (1 << shift)).astype(np.int32) for r in rings]
        cv2.fillPoly(mask, contours, 1, lineType=cv2.LINE_8, shift=shift)
    iy, ix = np.nonzero(mask)
    del mask
    guess = _nearest_point_guess(track, (rows, cols), (x0, y0), resolution)
    for start in range(0, len(ix), CHUNK):  # in chunks: projection temporaries are ~100 bytes a point
        cy, cx = iy[start : start + CHUNK], ix[start : start + CHUNK]
        px, py = x0 + cx * resolution, y0 + cy * resolution
        projection = track.project(px, py, nearest=track.nearest_points(px, py, guess[cy // GUESS_SCALE, cx // GUESS_SCALE]))
        offset = np.clip(projection.lateral_offset, -FIELD_CLIP, FIELD_CLIP) + FIELD_CLIP
        field[cy, cx, 0] = np.round(offset * 100).astype(np.uint16)
        phase = np.mod(projection.s, dash_period)
        field[cy, cx, 1] = np.round(np.minimum(phase, dash_period - phase) * 100).astype(np.uint16)

    # Surface variation: patches of tens of metres plus blotches of a few, from coarse Perlin grids,
    # mapped through the normal CDF so that every level is used about equally often.
    coarse = (max(8, int(rows * resolution / 2)), max(8, int(cols * resolution / 2)))
    patches = fractal_tile(coarse, (max(1, coarse[0] // 16), max(1, coarse[1] // 16)), rng, octaves=3)
    blotches = fractal_tile(coarse, (max(1, coarse[0] // 3), max(1, coarse[1] // 3)), rng, octaves=2)
    variation = (0.8 * patches + 0.6 * blotches).astype(np.float32)
    thresholds = float(variation.std()) * _LEVEL_QUANTILES
    # The level is the number of thresholds below the value. The value is float32, so comparing it with
    # each float64 threshold rounded down to float32 gives the same answers, and is far faster than
    # np.searchsorted (which compares in float64).
    below = [np.float32(t) if float(np.float32(t)) <= t else np.nextafter(np.float32(t), np.float32(-np.inf)) for t in thresholds]
    for start in range(0, rows, max(1, CHUNK // cols)):
        end = min(rows, start + max(1, CHUNK // cols))
        # Enlarge a band of rows of the coarse grid (bilinear, as cv2.resize would) and quantize it.
        gy = (np.arange(start, end) + 0.5) * (coarse[0] / rows) - 0.5
        gx = (np.arange(cols) + 0.5) * (coarse[1] / cols) - 0.5
        band = cv2.remap(variation, *np.meshgrid(gx.astype(np.float32), gy.astype(np.float32)), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        # Integers: bilinear sampling rounds, so the sampled value is already a level.
        level = np.zeros(band.shape, np.uint8)
        for threshold in below:
            level += band > threshold
        field[start:end, :, 2] = level
    field[..., 3] = 0
    return field, (x0, y0), float(dash_period)


def _nearest_point_guess(track: Track, shape: tuple[int, int], origin: tuple[float, float], resolution: float) -> np.ndarray:
    """Index of a centreline point near each cell of a grid GUESS_SCALE times coarser than the road field.

    A distance transform of the rasterized centreline points labels every cell with the point at the
    (approximately) nearest of them: a few points off at worst, which `Track.nearest_points` walks
    away, at a fraction of the cost of a tree search for every texel.
    """
    cell = resolution * GUESS_SCALE
    rows, cols = -(-shape[0] // GUESS_SCALE), -(-shape[1] // GUESS_SCALE)
    at = np.floor((track.centreline - origin) / cell + 0.5 / GUESS_SCALE).astype(np.int64)  # the cell of each point's texel
    seeds = np.full((rows, cols), 255, np.uint8)
    seeds[at[:, 1], at[:, 0]] = 0
    _, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    point_of_label = np.zeros(int(labels.max()) + 1, np.int64)
    point_of_label[labels[at[:, 1], at[:, 0]]] = np.arange(len(at))  # points sharing a cell: the last one
    return point_of_label[labels]


@functools.lru_cache(maxsize=2)
def detail_texture(size: int, cells: int) -> np.ndarray:
    """The tileable surface grain, (size, size) float32, zero mean, unit std; read-only, shared by every scene.

    Grain at every scale from `cells` per tile down to a texel: Perlin octaves
    plus per-texel speckle. One texture serves all tracks (colours and
    contrast vary per episode through the look): building it per track took
    about 0.2 s, most of a scene's build time, and a generation worker builds
    a scene per shard.
    """
    rng = np.random.default_rng(DETAIL_SEED)
    grain = fractal_tile((size, size), (cells, cells), rng, octaves=8, persistence=0.75)
    pad = 4  # blur a wrapped copy so the speckle stays tileable
    speckle = np.pad(rng.standard_normal((size, size)).astype(np.float32), pad, mode="wrap")
    speckle = cv2.GaussianBlur(speckle, (0, 0), 0.7)[pad:-pad, pad:-pad]
    detail = grain + 0.6 * speckle / max(float(speckle.std()), 1e-6)
    detail -= detail.mean()
    detail = (detail / detail.std()).astype(np.float32)
    detail.flags.writeable = False
    return detail
