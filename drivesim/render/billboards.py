"""Roadside objects as billboards: seeded placement per track, and drawing into a frame.

Objects are upright sprites that always face the camera. They give the scene
depth cues beyond the ground plane: posts at a fixed spacing show speed and
distance, chevrons announce bends, trees and bushes break up the skyline.
Drawing projects every object with numpy, culls, sorts far to near, and
pastes pre-scaled sprites; the scaled sprites are cached by pixel height and
haze level, so a frame costs one resize only for sizes not seen before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from drivesim.config import CameraConfig
from drivesim.render.camera import CameraPose, focal_length, rotation
from drivesim.render.noise import periodic_noise_1d
from drivesim.render.sprites import Sprite
from drivesim.track.geometry import Track

DRAW_DISTANCE = {"tree": 130.0, "conifer": 130.0, "group": 130.0, "chevron_left": 110.0, "chevron_right": 110.0,
                 "post": 90.0, "cone": 60.0, "bush": 50.0}
"""Objects farther than this from the camera are not drawn [m]: small things vanish sooner."""
EXACT_PIXELS = 32
"""Sprites up to this tall are scaled to the exact pixel height [px]."""
LADDER_STEP = 1.03
"""Taller sprites are scaled to heights on a geometric ladder with this ratio [-]."""
LOG_LADDER = math.log(LADDER_STEP)
MIN_PIXELS = 2
"""Objects projecting smaller than this many pixels tall are skipped [px]."""
NEAR_CLIP = 0.8
"""Objects closer than this along the optical axis are not drawn [m]."""
HAZE_LEVELS = 8
"""Haze on a sprite is quantized to this many steps for the sprite cache."""
MAX_CACHE = 4096
"""Scaled sprites kept before the cache is emptied (bounds memory at large image sizes)."""

# Free ground between the road edge and each kind of object, whichever part of the road is nearest [m].
_CLEARANCE = {"tree": 3.0, "conifer": 3.0, "group": 6.0, "bush": 1.8, "post": 0.5, "chevron_left": 0.6, "chevron_right": 0.6, "cone": 0.15}


@dataclass(frozen=True)
class Billboards:
    """Where the roadside objects of one track stand."""

    position: np.ndarray
    """(N, 2) ground position of each object's foot [m]."""
    height: np.ndarray
    """(N,) height of each object [m]."""
    sprite: np.ndarray
    """(N,) index into `sprites` of each object's image."""
    sprites: tuple[Sprite, ...]
    """The images, untinted."""
    aspect: np.ndarray
    """(N,) width over height of each object's image [-]."""
    draw_distance: np.ndarray
    """(N,) beyond this depth the object is not drawn [m]: small things vanish sooner."""

    homogeneous: np.ndarray = field(init=False, repr=False)
    """(N, 3) positions as (x, y, 1), for projecting all objects with one matrix product."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "homogeneous", np.column_stack([self.position, np.ones(len(self.position))]))


def place_billboards(track: Track, sprites: list[Sprite], rng: np.random.Generator) -> Billboards:
    """Seeded placement: posts, bend chevrons, tree belts, bushes and a few cones along `track`."""
    index = {}
    for i, sprite in enumerate(sprites):
        index.setdefault(sprite.name, []).append(i)
    half, length = track.width / 2, track.length
    s_list: list[np.ndarray] = []
    lateral: list[np.ndarray] = []
    kinds: list[np.ndarray] = []
    scale: list[np.ndarray] = []

    def add(s: np.ndarray, lat: np.ndarray, kind: np.ndarray, size: np.ndarray) -> None:
        s_list.append(np.asarray(s, float))
        lateral.append(np.asarray(lat, float))
        kinds.append(np.asarray(kind, int))
        scale.append(np.asarray(size, float))

    if rng.random() < 0.75:  # many roads have delineator posts, some do not
        spacing = rng.uniform(25.0, 50.0)
        s = np.arange(rng.uniform(0, spacing), length, spacing)
        offset = half + rng.uniform(0.9, 1.5)
        for side in (1.0, -1.0):
            add(s, side * np.full(len(s), offset), np.full(len(s), index["post"][0]), np.ones(len(s)))

    # Chevrons on the outside of bends tighter than ~70 m radius.
    sharp = np.abs(track.curvature) > 1 / 70
    s_sharp = track.s[sharp][:: max(1, int(rng.uniform(12, 18)))]
    if len(s_sharp):
        bend = np.sign(track.curvature_at(s_sharp))
        kind = np.where(bend > 0, index["chevron_left"][0], index["chevron_right"][0])
        add(s_sharp, -bend * (half + 1.3), kind, np.ones(len(s_sharp)))

    # Tree belts: density along each side follows smooth periodic noise (forest, then open field).
    # Single trees stand near the road; farther back, groups of trees draw a forest edge as one object each.
    conifer_share = rng.uniform(0, 1)
    for side in (1.0, -1.0):
        density = np.clip(0.35 + 0.5 * periodic_noise_1d(1024, max(2, int(length / 250)), rng), 0, 1) ** 1.5
        for kind_names, spacing, near, spread in ((("tree", "conifer"), 26.0, 4.0, 6.0), (("group",), 22.0, 11.0, 30.0)):
            s = np.sort(rng.uniform(0, length, int(length / spacing)))
            s = s[rng.random(len(s)) < np.interp(s / length * 1024, np.arange(1024), density)]
            distance = half + near + rng.uniform(0, spread, len(s))
            if kind_names == ("group",):
                pick = rng.choice(index["group"], len(s))
            else:
                conifer = rng.random(len(s)) < conifer_share
                pick = np.where(conifer, rng.choice(index["conifer"], len(s)), rng.choice(index["tree"], len(s)))
            add(s, side * distance, pick, rng.uniform(0.75, 1.25, len(s)))
        bushes = np.sort(rng.uniform(0, length, int(length / 90.0)))
        add(bushes, side * (half + rng.uniform(2.2, 6.0, len(bushes))), rng.choice(index["bush"], len(bushes)),
            rng.uniform(0.7, 1.4, len(bushes)))

    for _ in range(int(rng.integers(0, 3))):  # a few work zones with cones on the shoulder
        start, side = rng.uniform(0, length), rng.choice([-1.0, 1.0])
        s = start + 4.0 * np.arange(int(rng.integers(5, 9)))
        add(s, side * np.full(len(s), half + 0.35), np.full(len(s), index["cone"][0]), np.ones(len(s)))

    s_all, lat_all = np.concatenate(s_list), np.concatenate(lateral)
    kind_all, scale_all = np.concatenate(kinds), np.concatenate(scale)
    pose = track.pose_at(s_all, lat_all)
    position = np.column_stack([pose.x, pose.y])
    # Drop objects that landed on (or too near) another part of the road.
    nearest = np.abs(track.project(position[:, 0], position[:, 1]).lateral_offset)
    clearance = np.array([_CLEARANCE[sprites[k].name] for k in kind_all])
    ok = nearest >= half + clearance - 1e-6
    heights = np.array([sprites[k].height for k in kind_all]) * scale_all
    aspect = np.array([sprites[k].aspect for k in kind_all])
    draw = np.array([DRAW_DISTANCE[sprites[k].name] for k in kind_all])
    return Billboards(position[ok], heights[ok], kind_all[ok], tuple(sprites), aspect[ok], draw[ok])


class SpriteCache:
    """Sprites tinted for one episode, scaled to pixel sizes and hazed on demand."""

    def __init__(self, rgba: list[np.ndarray], haze_rgb: np.ndarray) -> None:
        self.haze = np.asarray(haze_rgb, np.float32)
        """Haze colour, 0-255."""
        # Premultiplied uint8 pyramids: a small target is averaged from the next larger level,
        # which is both right (every source texel counts) and cheap.
        self._pyramids: list[list[np.ndarray]] = []
        for image in rgba:  # uint8 RGBA, straight alpha
            alpha = image[..., 3:4].astype(np.float32) / 255
            premultiplied = np.dstack([image[..., :3] * alpha + 0.5, image[..., 3:4]])
            levels = [premultiplied.astype(np.uint8)]
            while min(levels[-1].shape[:2]) >= 8:
                levels.append(cv2.resize(levels[-1], (levels[-1].shape[1] // 2, levels[-1].shape[0] // 2), interpolation=cv2.INTER_AREA))
            self._pyramids.append(levels)
        self._cache: dict[tuple[int, int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.lookup = self._cache.get
        """(sprite, height, width, haze level) -> cached `get` result, or None: `get` without a method call."""

    def get(self, sprite: int, height: int, width: int, haze_level: int) -> tuple[np.ndarray, np.ndarray]:
        """(premultiplied colour, 255 - alpha) as uint8 (height, width, 3) for pasting."""
        key = (sprite, height, width, haze_level)
        entry = self._cache.get(key)
        if entry is None:
            if len(self._cache) >= MAX_CACHE:
                self._cache.clear()
            source = self._pyramids[sprite][0]
            for level in self._pyramids[sprite]:
                if level.shape[0] >= height and level.shape[1] >= width:
                    source = level
            entry = self._cache[key] = self._finish(source, (height, width), haze_level)
        return entry

    def crop(self, sprite: int, size: tuple[int, int], window: tuple[int, int, int, int], haze_level: int) -> tuple[np.ndarray, np.ndarray]:
        """Like `get` for the sprite scaled to `size` (h, w), but only rows/columns `window` (y0, y1, x0, x1) of it."""
        source = self._pyramids[sprite][0]
        sy, sx = source.shape[0] / size[0], source.shape[1] / size[1]
        y0, y1, x0, x1 = window
        top, left = int(y0 * sy), int(x0 * sx)
        part = source[top : max(top + 1, int(np.ceil(y1 * sy))), left : max(left + 1, int(np.ceil(x1 * sx)))]
        return self._finish(part, (y1 - y0, x1 - x0), haze_level)

    def _finish(self, source: np.ndarray, size: tuple[int, int], haze_level: int) -> tuple[np.ndarray, np.ndarray]:
        height, width = size
        shrink = height <= source.shape[0]
        small = cv2.resize(source, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        alpha = small[..., 3:4].astype(np.float32)
        haze = haze_level / (HAZE_LEVELS - 1)
        color = small[..., :3] * np.float32(1 - haze) + alpha * (haze / 255) * self.haze
        return color.astype(np.uint8), np.repeat(255 - small[..., 3:4], 3, axis=2)


def draw_billboards(
    frame: np.ndarray,
    billboards: Billboards,
    cache: SpriteCache,
    pose: CameraPose,
    camera: CameraConfig,
    haze_distance: float,
) -> None:
    """Paste every visible object into `frame` (H, W, 3) in place, far to near."""
    height, width = frame.shape[:2]
    if len(billboards.height) == 0:
        return
    rot = rotation(pose)
    # Camera-frame (right, down, depth) of every object's foot, in one product with (x, y, 1).
    to_camera = np.empty((3, 3))
    to_camera[:2] = rot[:, :2].T
    to_camera[2] = -(rot[:, 0] * pose.x + rot[:, 1] * pose.y + rot[:, 2] * pose.z)
    feet = billboards.homogeneous @ to_camera
    depth = feet[:, 2]
    f = focal_length(camera)
    visible = np.abs(feet[:, 0]) < depth * (width / 2 / f) + billboards.height
    visible &= depth > NEAR_CLIP
    visible &= depth < billboards.draw_distance
    idx = np.flatnonzero(visible)
    if len(idx) == 0:
        return
    # The few visible objects are cheaper in plain Python than in more numpy calls.
    candidates = sorted(
        zip(feet[idx].tolist(), billboards.height[idx].tolist(), billboards.aspect[idx].tolist(), billboards.sprite[idx].tolist(), strict=True),
        key=lambda item: -item[0][2],
    )
    cx, cy = (width - 1) / 2, (height - 1) / 2
    haze_scale = -1.0 / haze_distance
    cached = cache.lookup  # plain dict access in the loop: this runs for every object of every frame
    for (right, down, z), tall, aspect, sprite_id in candidates:
        scale = f / z
        # A billboard is a card facing the camera, so its scale follows its foot's depth. Above
        # EXACT_PIXELS sizes snap to a 3% ladder, so an episode scales each sprite to fewer sizes.
        exact = tall * scale
        if exact < MIN_PIXELS - 0.5:
            continue
        if exact > EXACT_PIXELS:
            exact = EXACT_PIXELS * LADDER_STEP ** round(math.log(exact / EXACT_PIXELS) / LOG_LADDER)
        hh = int(exact + 0.5)
        ww = max(1, int(hh * aspect + 0.5))
        # floor, not int: a centre left of the image (negative) must round down too, not towards zero.
        left = math.floor(right * scale + cx + 0.5) - ww // 2
        bottom = math.floor(down * scale + cy + 0.5) + 1
        top = bottom - hh
        xa = left if left > 0 else 0
        ya = top if top > 0 else 0
        xb = left + ww if left + ww < width else width
        yb = bottom if bottom < height else height
        if xa >= xb or ya >= yb:
            continue
        hz = int((HAZE_LEVELS - 1) * (1 - math.exp(z * haze_scale)) + 0.5)
        if hh <= 2 * height:
            entry = cached((sprite_id, hh, ww, hz))
            color, inverse = entry if entry is not None else cache.get(sprite_id, hh, ww, hz)
            if xb - xa != ww or yb - ya != hh:  # partly outside the frame
                color = color[ya - top : yb - top, xa - left : xb - left]
                inverse = inverse[ya - top : yb - top, xa - left : xb - left]
        else:  # right beside the camera: scale only the visible part, uncached
            color, inverse = cache.crop(sprite_id, (hh, ww), (ya - top, yb - top, xa - left, xb - left), hz)
        roi = frame[ya:yb, xa:xb]
        cv2.multiply(roi, inverse, dst=roi, scale=1 / 255)
        cv2.add(roi, color, dst=roi)
