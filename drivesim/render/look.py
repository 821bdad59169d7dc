"""`Look`: a scene dressed in one episode's `Appearance`, ready to render.

Switching the randomization per episode must be cheap next to an episode of
thousands of frames, so nothing track-sized is recoloured. Instead:

* the **road lookup table** maps (signed lateral offset in cm, filter
  level, dash coverage, surface-variation level) to a colour. Each filter level is the
  colour profile across the road box-filtered over a wider footprint (1 cm to
  20 m): a pixel that spans more of the road gets the average colour of what
  it covers, which is what keeps far lines from shimmering;
* the **detail mip chain** is the scene's detail texture at this episode's
  contrast, tiled so each level covers the area it is used for;
* **tree shadows** are rasterized into a coarse grid over the road field;
* sprites are tinted by the lighting.

Lighting (exposure, colour temperature, contrast) is applied to every base
colour here, once, rather than to every frame.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import cv2
import numpy as np

from drivesim.render.billboards import SpriteCache
from drivesim.render.randomization import Appearance
from drivesim.render.scene import FIELD_CLIP, VARIATION_LEVELS, Scene

FILTER_LEVELS = 12
"""Road-table filter widths 2**0 .. 2**11 cm; wider footprints use the widest."""
FOOTPRINT_UNIT = 4
"""Footprints are looked up in 8 bits, in units of this many cm (so up to ~10 m) [cm]."""
DASH_STEPS = 5
"""Dash coverage steps 0, 1/4, ..., 1 (two-lane roads)."""
EDGE_INSET = 0.2
"""Gap between the edge line's outer side and the asphalt edge [m]."""
DETAIL_AMPLITUDE = 0.11
"""Relative brightness variation of the detail texture at texture_contrast 1 [-]."""
DETAIL_LEVELS = 4
"""Detail mip levels (2, 4, 8, 16 cm at the default resolution); rows needing coarser ones get none."""
DETAIL_MIN_SIZE = 1024
"""Each detail mip level is tiled to at least this many texels across, so a band's view stays inside it."""
MAX_LOOKS = 2
"""Looks cached per scene."""
_CROWNS = {"tree": (0.65, 0.32), "conifer": (0.45, 0.2), "bush": (0.5, 0.7), "group": (0.6, 0.25)}


def kelvin_gains(temperature: float) -> np.ndarray:
    """Linear-light RGB gains of an illuminant at `temperature` [K], relative to 6500 K, half-corrected as auto white balance would."""

    def rgb(kelvin: float) -> np.ndarray:
        t = kelvin / 100
        r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
        g = 99.4708025861 * math.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
        b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307)
        return (np.clip([r, g, b], 1, 255) / 255) ** 2.2

    return (rgb(temperature) / rgb(6500.0)) ** 0.5


def tone(colors: Any, appearance: Appearance) -> np.ndarray:
    """Surface colours (..., 3) 0-255 as the camera records them under this episode's lighting (float32)."""
    linear = (np.asarray(colors, np.float32) / 255) ** 2.2 * appearance.light * kelvin_gains(appearance.color_temperature)
    srgb = np.clip(linear, 0, 1) ** (1 / 2.2) * 255
    return np.clip(128 + (srgb - 128) * appearance.contrast, 0, 255).astype(np.float32)


class Look:
    """A `Scene` in one `Appearance`: everything a frame of this episode needs besides the camera."""

    def __init__(self, scene: Scene, appearance: Appearance, filtered: bool = True) -> None:
        # Weak: the scene caches its looks, and a look holding its scene back would make a cycle of
        # tens of MB that only a full garbage collection frees (a worker would grow by a scene a shard).
        self._scene = weakref.ref(scene)
        self.appearance = appearance
        self.filtered = filtered
        """Distance filtering on; off only to show what it prevents (shimmer and moire)."""
        self.dash_steps = DASH_STEPS if scene.track.lanes == 2 else 1
        self.haze_rgb = tone(appearance.sky_horizon, appearance)
        """Colour of haze and of the sky at the horizon, 0-255."""
        self.table = _road_table(scene, appearance, self.dash_steps)
        """(FILTER_LEVELS * dash_steps * VARIATION_LEVELS, columns, 3) uint8 road colours."""
        footprint = np.maximum(np.arange(256, dtype=np.float64) * FOOTPRINT_UNIT, 1.0)
        level = np.clip(np.rint(np.log2(footprint)), 0, FILTER_LEVELS - 1) if filtered else np.zeros(256)
        self.level_rows = (level * self.dash_steps * VARIATION_LEVELS).astype(np.int16)
        """(256,) footprint across the road [FOOTPRINT_UNIT cm per pixel, saturated] -> first table row of its filter level."""
        self.detail_mips = _detail_mips(scene, appearance)
        """[(tiled uint8 texture, texel size [m], tile size [texels])] from fine to coarse."""
        self.shadow = _shadow_grid(scene, appearance) if appearance.shadow_strength > 0.01 else None
        """uint8 light factor (255 = sunlit) on the road-field grid, or None without shadows."""
        # Lighting acts on each channel alone, so sprites are toned through a 256-entry table.
        lut = np.empty((1, 256, 4), np.uint8)
        lut[0, :, :3] = np.clip(tone(np.repeat(np.arange(256)[:, None], 3, axis=1), appearance) + 0.5, 0, 255)
        lut[0, :, 3] = np.arange(256)
        self.sprites = SpriteCache([cv2.LUT(sprite.rgba8, lut) for sprite in scene.billboards.sprites], self.haze_rgb)
        self.cameras: dict[Any, Any] = {}
        """Per-camera precomputation (see view.CameraSetup), keyed by image size and pose."""

    @property
    def scene(self) -> Scene:
        """The scene this look is of; whoever renders a look holds its scene."""
        scene = self._scene()
        if scene is None:
            raise ReferenceError("this Look's Scene no longer exists; keep the scene while rendering its looks")
        return scene

    def nbytes(self) -> int:
        """Memory held by this look's arrays [bytes]."""
        total = self.table.nbytes + self.level_rows.nbytes + sum(m[0].nbytes for m in self.detail_mips)
        return total + (self.shadow.nbytes if self.shadow is not None else 0)


def get_look(scene: Scene, appearance: Appearance) -> Look:
    """The cached `Look` of `scene` in `appearance`, built on first use."""
    last = scene.cache.get("last")
    if last is not None and last.appearance is appearance:  # every frame of an episode: skip hashing
        return last
    look = scene.cache.get(appearance)
    if look is None:
        if len(scene.cache) > MAX_LOOKS:
            scene.cache.pop(next(key for key in scene.cache if key != "last"))
        look = scene.cache[appearance] = Look(scene, appearance)
    scene.cache["last"] = look
    return look


def _coverage(d: np.ndarray, start: float, stop: float) -> np.ndarray:
    """Fraction of each 1-cm bin centred on `d` [cm] inside [start, stop] [cm]."""
    return np.clip(np.minimum(stop, d + 0.5) - np.maximum(start, d - 0.5), 0.0, 1.0)


def _road_table(scene: Scene, appearance: Appearance, dash_steps: int) -> np.ndarray:
    half = scene.track.width * 50
    line = appearance.line_width * 100
    columns = int(2 * FIELD_CLIP * 100) + 1
    d = np.abs(np.arange(columns, dtype=np.float64) - FIELD_CLIP * 100)  # |lateral offset| of each column [cm]
    # Variation level q: lighter or darker patches of asphalt, greener or drier grass, more worn paint.
    variation = np.linspace(0.0, 1.0, VARIATION_LEVELS)[:, None, None]  # (q, 1, 1)
    asphalt = tone(appearance.asphalt, appearance) * (0.9 + 0.2 * variation)
    grass = tone(appearance.grass, appearance)
    grass = (grass + variation * (tone(appearance.grass_alt, appearance) - grass)) * (0.88 + 0.24 * variation)
    verge_end = half + appearance.verge_width * 100
    to_grass = np.clip((d - verge_end + 25) / 50, 0, 1)[None, :, None]
    ground = tone(appearance.verge, appearance) * (0.92 + 0.16 * variation) * (1 - to_grass) + grass * to_grass
    on_road = _coverage(d, -1.0, half)[None, :, None]
    colour = asphalt * on_road + ground * (1 - on_road)  # (q, d, 3)
    # Worn paint fades in the blotches of high variation level, more so the more worn the episode.
    opacity = np.clip(1 - appearance.marking_wear * (0.3 + 1.2 * variation), 0.0, 1.0)
    if appearance.edge_lines:
        edge = _coverage(d, half - EDGE_INSET * 100 - line, half - EDGE_INSET * 100)[None, :, None] * opacity
        colour = colour * (1 - edge) + tone(appearance.edge_line, appearance) * edge
    # Colour is linear in the dash coverage c: base + c * paint, and filtering is linear, so only
    # the base and paint profiles are filtered and the dash steps are mixed afterwards.
    paint = np.zeros_like(colour)
    if dash_steps > 1:
        centre = _coverage(d, -1.0, line / 2)[None, :, None] * opacity
        paint = (tone(appearance.centre_line, appearance) - colour) * centre
    table = np.empty((FILTER_LEVELS, dash_steps, VARIATION_LEVELS, columns, 3), np.float32)
    dash = np.linspace(0.0, 1.0, dash_steps, dtype=np.float32)[:, None, None, None]
    for level in range(FILTER_LEVELS):
        table[level] = _box_filter(colour, 2**level)[None] + dash * _box_filter(paint, 2**level)[None]
    table = table.reshape(-1, columns, 3)  # row = (level * dash_steps + c) * VARIATION_LEVELS + q
    return cv2.convertScaleAbs(table)  # rounds and saturates to uint8; colours are never negative


def _box_filter(profiles: np.ndarray, width: int) -> np.ndarray:
    """Mean of `profiles` (q, d, 3) over a box `width` columns wide centred on each column; ends extend."""
    if width == 1:
        return profiles.astype(np.float32)
    half = width // 2  # widths are powers of two: the box edges fall on column centres, each end weighs 1/2
    padded = np.concatenate([np.repeat(profiles[:, :1], half, axis=1), profiles, np.repeat(profiles[:, -1:], half, axis=1)], axis=1)
    integral = np.concatenate([np.zeros_like(padded[:, :1]), np.cumsum(padded, axis=1)], axis=1)
    n = profiles.shape[1]
    # Sum over columns i - half .. i + half with the two end columns halved.
    inner = integral[:, width : width + n] - integral[:, 1 : 1 + n]
    ends = padded[:, :n] + padded[:, width : width + n]
    return ((inner + 0.5 * ends) / width).astype(np.float32)


def _detail_mips(scene: Scene, appearance: Appearance) -> list[tuple[np.ndarray, float, int]]:
    amplitude = 128 * DETAIL_AMPLITUDE * appearance.texture_contrast
    level = np.clip(128 + amplitude * scene.detail, 0, 255).astype(np.uint8)
    mips = []
    resolution = scene.detail_resolution
    while True:
        tile = level.shape[0]
        repeats = max(3, -(-DETAIL_MIN_SIZE // tile))
        mips.append((np.tile(level, (repeats, repeats)), resolution, tile))
        if tile % 2 or tile < 32 or len(mips) == DETAIL_LEVELS:
            break
        level = cv2.resize(level, (tile // 2, tile // 2), interpolation=cv2.INTER_AREA)
        resolution *= 2
    return mips


def _shadow_grid(scene: Scene, appearance: Appearance) -> np.ndarray:
    """Light factor on the road-field grid: crowns' shadows thrown away from the sun, soft-edged."""
    boards = scene.billboards
    rows, cols = scene.field.shape[:2]
    shade = np.zeros((rows, cols), np.uint8)
    names = np.array([boards.sprites[k].name for k in boards.sprite])
    trees = np.isin(names, list(_CROWNS))
    away = -np.array([math.cos(appearance.sun_azimuth), math.sin(appearance.sun_azimuth)])
    elevation = appearance.sun_elevation
    # Crown centre height and radius, as fractions of the object's height (a group: of its width).
    crown_height = np.array([_CROWNS.get(n, (0.0, 0.0))[0] for n in names]) * boards.height
    size = np.where(names == "group", boards.height * boards.aspect, boards.height)
    radius = np.array([_CROWNS.get(n, (0.0, 0.0))[1] for n in names]) * size
    centre = boards.position + away * (crown_height / math.tan(elevation))[:, None]
    along = np.minimum(radius / math.sin(elevation), 3 * radius)
    angle = math.degrees(math.atan2(away[1], away[0]))
    scale = 16 / scene.field_resolution  # 4 bits of sub-texel precision
    for (x, y), a, b in zip(centre[trees], along[trees], radius[trees], strict=True):
        cx, cy = int((x - scene.origin[0]) * scale), int((y - scene.origin[1]) * scale)
        cv2.ellipse(shade, (cx, cy), (int(a * scale), int(b * scale)), angle, 0, 360, 255, -1, cv2.LINE_AA, 4)
    shade = cv2.GaussianBlur(shade, (0, 0), 0.35 / scene.field_resolution)
    return cv2.convertScaleAbs(shade, alpha=-appearance.shadow_strength, beta=255)  # 255 - strength * shade
