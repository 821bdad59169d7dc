"""Per-episode domain randomization: `Appearance` and `sample_appearance`.

An `Appearance` is every per-episode look parameter as plain numbers, so it
serializes to JSON for the shard attributes and reproduces the episode's
frames when read back. `sample_appearance` draws one from a
`RandomizationConfig`: level `none` gives the fixed `REFERENCE` look, `light`
moves each parameter part of the way towards a random draw, `full` all the
way. Only what a real road camera sees is varied: lighting, surfaces, paint,
shadows, haze, small mounting changes, sensor noise of a few counts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivesim.config import CameraConfig, ConfigError, RandomizationConfig

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Appearance:
    """The look of one episode. Colours are surface colours (sRGB 0-255) before lighting."""

    level: str = "none"
    """Randomization level this was drawn at (none, light or full)."""
    seed: int = 0
    """Seed of the episode's own textures (clouds, sensor-noise pattern)."""
    light: float = 1.0
    """Exposure: scene brightness multiplier in linear light [-]."""
    color_temperature: float = 6500.0
    """Colour temperature of the illuminant [K]; 6500 is neutral."""
    contrast: float = 1.0
    """Contrast about mid-grey [-]; 1 is unchanged."""
    cloud_cover: float = 0.2
    """Fraction of the sky under cloud [0, 1]; also greys the sky."""
    sky_zenith: RGB = (72, 128, 205)
    """Sky colour straight up."""
    sky_horizon: RGB = (190, 208, 228)
    """Sky colour at the horizon; also the haze colour."""
    asphalt: RGB = (92, 92, 96)
    """Road surface."""
    verge: RGB = (138, 126, 104)
    """Gravel or dirt shoulder next to the asphalt."""
    grass: RGB = (76, 112, 46)
    """Ground beyond the verge."""
    grass_alt: RGB = (112, 124, 58)
    """Second ground colour, mixed in by large patches."""
    verge_width: float = 1.0
    """Width of the shoulder beyond the road edge [m]."""
    texture_contrast: float = 1.0
    """Strength of the surface detail texture [-]; 1 is the reference."""
    centre_line: RGB = (232, 232, 226)
    """Paint of the dashed centre line (two-lane roads)."""
    edge_line: RGB = (232, 232, 226)
    """Paint of the edge lines."""
    edge_lines: bool = True
    """Whether the road has edge lines at all."""
    line_width: float = 0.15
    """Width of painted lines [m]."""
    dash_length: float = 3.0
    """Length of each centre-line dash [m], out of a 12 m dash period."""
    marking_wear: float = 0.15
    """How worn the paint is [0, 1]; worn paint fades towards the asphalt in patches."""
    shadow_strength: float = 0.0
    """Darkening inside tree shadows [0, 1]; 0 means no shadows."""
    sun_azimuth: float = 0.8
    """Direction the sun shines from, counter-clockwise from +x [rad]."""
    sun_elevation: float = 0.8
    """Sun height above the horizon [rad]; low sun casts long shadows."""
    haze_distance: float = 900.0
    """Distance at which haze hides 63% of the scene [m]."""
    camera_height: float = 0.0
    """Change of the camera mounting height [m]."""
    camera_pitch: float = 0.0
    """Change of the camera pitch [rad]."""
    camera_fov: float = 0.0
    """Change of the horizontal field of view [rad]."""
    noise_std: float = 0.0
    """Sensor noise standard deviation [8-bit counts]."""
    blur_sigma: float = 0.0
    """Gaussian lens-blur sigma [px]; below 0.35 the blur is imperceptible and skipped."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (colours become lists)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Appearance:
        """Inverse of `to_dict`; unknown keys raise ConfigError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"Appearance: unknown key(s) {', '.join(unknown)}")
        return cls(**{key: tuple(int(c) for c in value) if isinstance(value, list) else value for key, value in data.items()})

    def apply_to_camera(self, camera: CameraConfig) -> CameraConfig:
        """`camera` with this episode's mounting jitter, kept inside CameraConfig's limits."""
        return dataclasses.replace(
            camera,
            mount_height=min(5.0, max(0.2, camera.mount_height + self.camera_height)),
            pitch=min(0.8, max(-0.3, camera.pitch + self.camera_pitch)),
            fov=min(2.8, max(0.2, camera.fov + self.camera_fov)),
        )


REFERENCE = Appearance()
"""The look with randomization off."""

# Families a surface colour is drawn from at level full; light moves part of the way.
_ASPHALT = [(92, 92, 96), (52, 52, 56), (70, 70, 74), (124, 122, 118), (106, 99, 90), (80, 84, 96)]
_VERGE = [(138, 126, 104), (118, 94, 70), (172, 154, 116), (110, 110, 104), (96, 110, 60)]
_GRASS = [  # (grass, grass_alt)
    ((76, 112, 46), (112, 124, 58)),
    ((54, 100, 38), (80, 118, 50)),
    ((138, 132, 70), (160, 142, 92)),
    ((150, 122, 84), (170, 146, 104)),
    ((96, 118, 66), (74, 96, 52)),
]
_YELLOW = (222, 180, 40)
_OVERCAST_ZENITH = (150, 156, 164)
_OVERCAST_HORIZON = (196, 200, 204)


class _Draws:
    """Uniform numbers in fixed slots, so switching one effect off leaves every other draw unchanged."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.index = 0

    def __call__(self, low: float = 0.0, high: float = 1.0) -> float:
        value = float(self.values[self.index])
        self.index += 1
        return low + (high - low) * value

    def pick(self, options: list[Any]) -> Any:
        return options[min(len(options) - 1, int(self() * len(options)))]


def _mix(reference: RGB, target: RGB, amount: float) -> RGB:
    return tuple(int(round(r + amount * (t - r))) for r, t in zip(reference, target, strict=True))  # type: ignore[return-value]


def _jitter(color: RGB, draws: _Draws, amount: float) -> RGB:
    # Mostly brightness, a little hue: real surfaces vary far more in shade than in tint.
    shade = amount * draws(-1, 1)
    return tuple(int(min(255, max(0, round(c + shade + 0.3 * amount * draws(-1, 1))))) for c in color)  # type: ignore[return-value]


def _log_mix(reference: float, target: float, amount: float) -> float:
    return math.exp(math.log(reference) + amount * (math.log(target) - math.log(reference)))


def sample_appearance(config: RandomizationConfig, rng: np.random.Generator) -> Appearance:
    """Draw one episode's `Appearance`; level none returns `REFERENCE` itself.

    The rng is advanced by the same amount whatever the config, and each
    effect has its own draws, so switching one effect off leaves the others'
    values unchanged.
    """
    seed = int(rng.integers(0, 2**31 - 1))
    draws = _Draws(rng.random(48))
    k = config.strength
    if k == 0:
        return REFERENCE
    ref = REFERENCE
    values: dict[str, Any] = {"level": config.level, "seed": seed}

    lighting = draws(), draws(), draws(), draws(), draws(), draws()
    if config.lighting and k > 0:
        cloud = lighting[3] ** 1.5
        values["light"] = _log_mix(1.0, 0.6 + 0.65 * lighting[0], k)
        values["color_temperature"] = _log_mix(6500.0, 4500.0 * 2.0 ** lighting[1], k)
        values["contrast"] = _log_mix(1.0, 0.75 + 0.45 * lighting[2], k)
        values["cloud_cover"] = ref.cloud_cover + k * (cloud - ref.cloud_cover)
        clear = _mix(ref.sky_zenith, (40 + int(60 * lighting[4]), 100 + int(50 * lighting[4]), 200 + int(40 * lighting[5])), k)
        values["sky_zenith"] = _mix(clear, _OVERCAST_ZENITH, values["cloud_cover"] ** 2)
        values["sky_horizon"] = _mix(ref.sky_horizon, _OVERCAST_HORIZON, k * cloud)

    surfaces = _Draws(np.array([draws() for _ in range(17)]))
    if config.surfaces and k > 0:
        sub = surfaces
        values["asphalt"] = _jitter(_mix(ref.asphalt, sub.pick(_ASPHALT), k), sub, 8 * k)
        values["verge"] = _jitter(_mix(ref.verge, sub.pick(_VERGE), k), sub, 12 * k)
        grass, alt = sub.pick(_GRASS)
        values["grass"] = _jitter(_mix(ref.grass, grass, k), sub, 10 * k)
        values["grass_alt"] = _mix(ref.grass_alt, alt, k)
        values["verge_width"] = ref.verge_width + k * (3.0 * sub() - ref.verge_width)
        values["texture_contrast"] = _log_mix(1.0, 0.6 * (1.6 / 0.6) ** sub(), k)

    marks = [draws() for _ in range(7)]
    if config.markings and k > 0:
        yellow = marks[0] < 0.5 * k
        values["centre_line"] = _mix(ref.centre_line, _YELLOW, 1.0) if yellow else ref.centre_line
        values["edge_line"] = _mix(ref.edge_line, (250, 250, 250), k * marks[1])
        values["edge_lines"] = marks[2] >= 0.1 * k
        # The centre line is the only thing that tells a two-lane road (keep right) from a wide one-lane road
        # (keep to the middle): markings vary, but never so thin, short or worn that it vanishes at 160x120.
        # Wear up to 0.85 and 1.5 m dashes did, and a network trained on them drifted towards the middle of
        # every two-lane road (scripts/probe_lateral.py).
        values["line_width"] = ref.line_width + k * (0.12 + 0.13 * marks[3] - ref.line_width)
        values["dash_length"] = ref.dash_length + k * (2.5 + 3.5 * marks[4] - ref.dash_length)
        values["marking_wear"] = ref.marking_wear + k * (0.5 * marks[5] - ref.marking_wear)

    sun = draws(), draws(), draws()
    if config.shadows and k > 0:
        overcast = values.get("cloud_cover", ref.cloud_cover)
        values["shadow_strength"] = k * (0.25 + 0.45 * sun[0]) * (1.0 - 0.8 * overcast)
        values["sun_azimuth"] = 2 * math.pi * sun[1]
        values["sun_elevation"] = 0.35 + 0.85 * sun[2]

    haze = draws()
    if config.haze and k > 0:
        values["haze_distance"] = _log_mix(ref.haze_distance, 80.0 * 25.0**haze, k)

    jitter = draws(-1, 1), draws(-1, 1), draws(-1, 1)
    if config.camera and k > 0:
        values["camera_height"] = k * config.max_height_jitter * jitter[0]
        values["camera_pitch"] = k * config.max_pitch_jitter * jitter[1]
        values["camera_fov"] = k * config.max_fov_jitter * jitter[2]

    sensor = draws(), draws()
    if config.sensor and k > 0:
        values["noise_std"] = k * config.max_noise * (0.3 + 0.7 * sensor[0])
        values["blur_sigma"] = k * config.max_blur * sensor[1]

    return dataclasses.replace(ref, **{key: _plain(value) for key, value in values.items()})


def _plain(value: Any) -> Any:
    """Python scalars only, so `to_dict` is JSON-ready and equality is exact."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return value
