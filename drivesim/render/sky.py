"""The sky panorama: sky gradient, clouds, distant hills and tree line over a full turn.

Everything above the ground is infinitely far away, so it depends on the
camera's direction only. It is painted once per camera setup into a
cylindrical panorama (columns = azimuth, rows = elevation) at the camera's
angular resolution; a frame is a remap of it, shifted by the camera's yaw.
The maps account for pitch, so the hills sit exactly on the ground's horizon.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

from drivesim.config import CameraConfig
from drivesim.render.camera import CameraPose, focal_length, rotation
from drivesim.render.noise import fractal_tile

if TYPE_CHECKING:
    from drivesim.render.look import Look

_CLOUD = (238, 238, 242)
_CLOUD_SHADE = (170, 172, 182)
_FOREST = (34, 54, 30)

MAX_PANORAMA_PIXELS = 1 << 23
"""Panorama size above which its resolution is lowered [px]: about 0.2 GB while it is painted, under a second.
Cameras up to 1280x720 at the default lens stay below it, at their full resolution."""


def sky_panorama(look: Look, camera: CameraConfig, pose: CameraPose, rows: int) -> tuple[np.ndarray, np.ndarray, float, float, int]:
    """Panorama and lookup map for the top `rows` image rows of `camera` at `pose`'s height and pitch.

    Returns (panorama uint8, map, smallest relative azimuth [rad], panorama
    columns per radian, columns per turn). The panorama repeats its first
    columns past a full turn, so a frame's sky is a nearest-neighbour remap of
    the window `panorama[:, shift:]` with the fixed int16 `map`, where
    `shift = round((yaw + azimuth_min) * columns_per_radian) mod columns_per_turn`.
    Columns are oversampled, so the sky turns in sub-pixel steps.
    """
    from drivesim.render.look import tone  # look builds camera setups that call this; import late to avoid a cycle

    appearance, scene = look.appearance, look.scene
    f = focal_length(camera)
    rows = max(rows, 1)
    v, u = np.mgrid[0:rows, 0 : camera.width].astype(np.float64)
    rays = np.stack([(u - (camera.width - 1) / 2) / f, (v - (camera.height - 1) / 2) / f, np.ones_like(u)], axis=-1)
    world = rays @ rotation(CameraPose(0.0, 0.0, pose.z, 0.0, pose.pitch))  # camera -> world is R transposed
    azimuth = np.arctan2(world[..., 1], world[..., 0])
    elevation = np.arctan2(world[..., 2], np.hypot(world[..., 0], world[..., 1]))
    azimuth_min = float(azimuth.min())
    azimuth_span, elevation_span = float(azimuth.max()) - azimuth_min, float(elevation.max() - elevation.min())

    over_x, over_y = (4.0, 2.0) if camera.width <= 320 else (2.0, 1.0)
    # A full turn at a large or narrow camera's resolution is gigabytes (4096 px at 0.2 rad: about a billion
    # pixels); past the budget the panorama is coarser than the screen, which the smooth sky hides.
    natural = (2 * math.pi + azimuth_span) * f * over_x * (elevation_span * f * over_y)
    if natural > MAX_PANORAMA_PIXELS:
        coarser = math.sqrt(MAX_PANORAMA_PIXELS / natural)
        over_x, over_y = over_x * coarser, over_y * coarser
    turn = max(64, int(round(2 * math.pi * f * over_x)))
    per_radian_x, per_radian_y = turn / (2 * math.pi), f * over_y
    top = float(elevation.max()) + 1 / per_radian_y
    height = int(math.ceil((top - float(elevation.min())) * per_radian_y)) + 2
    span = int(math.ceil(azimuth_span * per_radian_x)) + 2
    lookup = np.empty((rows, camera.width, 2), np.int16)
    lookup[..., 0] = np.rint((azimuth - azimuth_min) * per_radian_x)
    lookup[..., 1] = np.rint((top - elevation) * per_radian_y)

    e_row = (top - np.arange(height, dtype=np.float32) / np.float32(per_radian_y))[:, None]  # elevation of each row
    e = np.broadcast_to(e_row, (height, turn))
    a = np.arange(turn) / per_radian_x
    horizon, zenith = tone(appearance.sky_horizon, appearance), tone(appearance.sky_zenith, appearance)
    t = (1 - np.exp(-np.maximum(e_row, 0) / 0.35))[..., None]
    image = np.broadcast_to(horizon + (zenith - horizon) * t, (height, turn, 3)).astype(np.float32)

    # Clouds: smooth, so drawn on a coarse periodic grid and enlarged (with wrap-around padding).
    rng = np.random.default_rng([appearance.seed, 0xC10D])
    coarse = (max(4, height // 4), max(16, turn // 8))
    noise = fractal_tile(coarse, (max(1, int(round((top + 0.1) / 0.1))), 20), rng, octaves=4, persistence=0.55)
    padded = np.pad(noise, ((0, 0), (1, 1)), mode="wrap")
    scale = turn / coarse[1]
    clouds = cv2.resize(padded, (int(round(padded.shape[1] * scale)), height), interpolation=cv2.INTER_CUBIC)
    start = int(round(scale))
    clouds = clouds[:, start : start + turn]
    cover = np.clip((clouds - 1.8 + 3.4 * appearance.cloud_cover) * 0.7, 0, 1)
    cover *= 1 - np.exp(-np.maximum(e_row, 0) / 0.05)  # clouds thin into the haze at the horizon
    shade = np.clip(0.55 + 0.3 * clouds, 0, 1)[..., None]
    cloud = tone(_CLOUD_SHADE, appearance) + (tone(_CLOUD, appearance) - tone(_CLOUD_SHADE, appearance)) * shade
    image += (cloud - image) * cover[..., None]

    samples = np.arange(len(scene.hills)) * (2 * math.pi / len(scene.hills))
    hills = np.interp(a, samples, scene.hills, period=2 * math.pi)
    treeline = np.interp(a, samples, scene.treeline, period=2 * math.pi)
    haze = look.haze_rgb
    hill_colour = haze + (tone(appearance.grass, appearance) * 0.55 + np.float32([0, 6, 22]) - haze) * 0.4
    forest_colour = haze + (tone(_FOREST, appearance) - haze) * 0.75
    # Silhouettes with antialiased outlines: coverage of each panorama pixel below the profile.
    for profile, colour in ((hills, hill_colour), (treeline, forest_colour)):
        cover = np.clip((profile[None, :].astype(np.float32) - e) * np.float32(per_radian_y) + 0.5, 0, 1)
        rows = np.flatnonzero(cover.max(axis=1) > 0)  # silhouettes cover only the rows near the horizon
        if len(rows):
            band = slice(rows[0], rows[-1] + 1)
            image[band] += (colour - image[band]) * cover[band, :, None]

    image = cv2.convertScaleAbs(image)  # round and saturate to uint8
    panorama = np.ascontiguousarray(np.concatenate([image, image[:, :span]], axis=1))
    return panorama, lookup, azimuth_min, per_radian_x, turn
