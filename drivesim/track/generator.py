"""Procedural tracks: seed + `TrackConfig` -> a valid closed `Track`.

A loop is drawn in polar form, its radius modulated by Perlin noise sampled
on a circle in noise space (so the modulation is periodic and the loop
closes smoothly), stretched and rotated at random, smoothed with a periodic
cubic spline and resampled every metre of arc length. A candidate that
fails validation is retried with a gentler modulation; every random draw
comes from `numpy.random.default_rng([seed, attempt])`, so a seed always
gives the same track.
"""

from __future__ import annotations

from collections.abc import Mapping

import noise
import numpy as np
import shapely

from drivesim.config import TrackConfig
from drivesim.track.geometry import Track, TrackError

MAX_ATTEMPTS = 40
DENSE_SAMPLES = 4096
POINT_SPACING = 1.0
"""Centreline sample spacing [m]."""
COORDINATE_DECIMALS = 3
"""Centreline points are rounded to millimetres so that a saved track reloads bit-identically."""


class TrackGenerationError(TrackError):
    """No valid track could be made from this seed and config."""


def validate_track(track: Track, min_radius: float, clearance: float = 0.0) -> None:
    """Raise TrackError unless the road is a clean, drivable loop.

    The centreline must not cross itself, no bend may be tighter than
    `min_radius` [m], and the road widened by `clearance / 2` [m] on each side
    must form one annulus: exactly one hole. Where two parts of the road come
    closer than `clearance`, their strips merge and split the hole in two.
    """
    if not shapely.LinearRing(track.centreline).is_simple:
        raise TrackError("the centreline crosses itself")
    tightest = float(np.max(np.abs(track.curvature)))
    # 2% slack: curvature from a metre-sampled polyline is a finite difference.
    if tightest * min_radius > 1.02:
        raise TrackError(f"a bend of radius {1 / tightest:.1f} m is tighter than the minimum {min_radius:.1f} m")
    surface = track.polygon(margin=clearance / 2)
    if not isinstance(surface, shapely.Polygon) or len(surface.interiors) != 1:
        raise TrackError("the road overlaps itself or passes closer to itself than the verge clearance")


def generate_track(seed: int, config: TrackConfig | None = None) -> Track:
    """A valid closed track for `seed`; raises TrackGenerationError if every attempt fails."""
    config = config or TrackConfig()
    reasons: list[str] = []
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([seed, attempt])
        # Each retry tones the bends down so that tight configs still converge.
        gentleness = 0.85**attempt
        points = _candidate_centreline(rng, config, gentleness)
        try:
            track = Track(points, config.width, config.lanes, seed=seed, config=config, name=f"seed-{seed}")
            validate_track(track, config.min_radius, config.verge_clearance)
        except TrackError as error:
            reasons.append(str(error))
            continue
        return track
    raise TrackGenerationError(
        f"seed {seed}: no valid track in {MAX_ATTEMPTS} attempts (last: {reasons[-1]}); "
        "try a longer track, a smaller minimum radius, a narrower road or less curviness"
    )


RANDOM_WIDTHS: Mapping[int, tuple[float, float]] = {1: (6.0, 10.0), 2: (7.0, 12.0)}
"""Road width range [m] of random tracks by lane count. The ranges overlap widely on
purpose: when width alone tells one- from two-lane roads, a network learns to keep right
on wide roads instead of reading the centre line, and fails where the ranges meet."""


RANDOM_TRACK_SEEDS = (1_000_000, 2**31 - 1)
"""Fresh random tracks (generate, play's T, the Gymnasium environment) draw seeds from this range, far from
the bundled tracks' seeds (1000-3999)."""


def random_track_config(rng: np.random.Generator, widths: Mapping[int, tuple[float, float]] = RANDOM_WIDTHS) -> TrackConfig:
    """A varied TrackConfig: 400-3000 m, 1 or 2 lanes, width from `widths` by lane count, curviness 0.1-1."""
    lanes = int(rng.integers(1, 3))
    width = float(np.round(rng.uniform(*widths[lanes]), 1))
    return TrackConfig(
        length=float(np.round(rng.uniform(400.0, 3000.0), -1)),
        width=width,
        lanes=lanes,
        curviness=float(np.round(rng.uniform(0.1, 1.0), 2)),
        min_radius=max(20.0, width * 2.5),
    )


def _candidate_centreline(rng: np.random.Generator, config: TrackConfig, gentleness: float) -> np.ndarray:
    n_control = 128
    theta = np.linspace(0.0, 2 * np.pi, n_control, endpoint=False)
    # Sample 2-D noise on a circle of radius `frequency` around a random
    # centre: periodic in theta, and a different pattern for every seed.
    frequency = 0.6 + 1.2 * config.curviness
    centre = rng.uniform(-5000.0, 5000.0, size=2)
    amplitude = (0.2 + 0.9 * config.curviness) * gentleness
    modulation = np.array(
        [
            noise.pnoise2(centre[0] + frequency * np.cos(a), centre[1] + frequency * np.sin(a), octaves=2, persistence=0.3)
            for a in theta
        ]
    )
    modulation = (modulation - modulation.mean()) / (np.abs(modulation).max() + 1e-9)
    radius = np.exp(amplitude * modulation)
    aspect = rng.uniform(0.5, 1.0)
    control = np.column_stack([radius * np.cos(theta), aspect * radius * np.sin(theta)])
    rotation = rng.uniform(0, 2 * np.pi)
    c, s = np.cos(rotation), np.sin(rotation)
    control = control @ np.array([[c, s], [-s, c]])
    if rng.random() < 0.5:  # half the tracks run clockwise, so left and right bends balance
        control = control[::-1]
    control = np.roll(control, int(rng.integers(n_control)), axis=0)

    target_length = config.length * rng.uniform(0.9, 1.1)
    dense = _periodic_spline(control, samples=DENSE_SAMPLES)
    dense *= target_length / _loop_length(dense)
    dense = _limit_curvature(dense, config.min_radius, target_length)
    return _resample_by_arc_length(dense, POINT_SPACING)


def _limit_curvature(points: np.ndarray, min_radius: float, length: float) -> np.ndarray:
    """Smooth a dense closed loop until no bend is tighter than `min_radius` (5% margin)."""
    # Imported here, not at the top: a process that only loads tracks never needs it.
    from scipy.ndimage import gaussian_filter1d

    sigma = 1.0
    while _max_curvature(points) * min_radius > 0.95:
        points = gaussian_filter1d(points, sigma, axis=0, mode="wrap")
        points *= length / _loop_length(points)
        sigma *= 1.3
        if sigma > DENSE_SAMPLES / 4:  # smoothed to a circle and still too tight
            break
    return points


def _max_curvature(points: np.ndarray) -> float:
    d1 = (np.roll(points, -1, axis=0) - np.roll(points, 1, axis=0)) / 2
    d2 = np.roll(points, -1, axis=0) - 2 * points + np.roll(points, 1, axis=0)
    cross = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    return float(np.max(np.abs(cross) / np.hypot(d1[:, 0], d1[:, 1]) ** 3))


def _periodic_spline(points: np.ndarray, samples: int) -> np.ndarray:
    # Imported here, not at the top: a process that only loads tracks never needs it.
    from scipy.interpolate import CubicSpline

    closed = np.vstack([points, points[:1]])
    chord = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(closed, axis=0).T))])
    spline = CubicSpline(chord, closed, bc_type="periodic")
    u = np.linspace(0.0, chord[-1], samples, endpoint=False)
    return spline(u)


def _loop_length(points: np.ndarray) -> float:
    return float(np.hypot(*(np.roll(points, -1, axis=0) - points).T).sum())


def _resample_by_arc_length(points: np.ndarray, spacing: float) -> np.ndarray:
    closed = np.vstack([points, points[:1]])
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(closed, axis=0).T))])
    count = max(16, int(round(arc[-1] / spacing)))
    targets = np.linspace(0.0, arc[-1], count, endpoint=False)
    resampled = np.column_stack([np.interp(targets, arc, closed[:, 0]), np.interp(targets, arc, closed[:, 1])])
    return np.round(resampled, COORDINATE_DECIMALS)
