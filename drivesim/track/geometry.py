"""`Track`: a closed road as an arc-length-parameterised centreline.

The centreline is a closed polyline sampled about every metre. Everything a
driver, the world or the renderer asks of the road (where am I along it, how
far from its centre, which way does it go, how sharply does it bend, is this
point on the asphalt) is answered here, vectorised with numpy.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import shapely
from scipy.spatial import cKDTree

from drivesim.config import TrackConfig
from drivesim.errors import DrivesimError

NEAR_WINDOW = 12.0
"""Half-length of centreline searched by `Track.project(..., near_s=...)` [m]."""


class TrackError(DrivesimError, ValueError):
    """A track is malformed or geometrically invalid."""


class Projection(NamedTuple):
    """A point expressed relative to the centreline (all arrays, same shape as the input)."""

    s: np.ndarray
    """Progress along the centreline from the start line [m], in [0, length)."""
    lateral_offset: np.ndarray
    """Signed distance from the centreline, positive = left of the travel direction [m]."""
    heading_error: np.ndarray
    """Yaw minus the road heading, wrapped to (-pi, pi] [rad]; NaN where no yaw was given."""


class Pose(NamedTuple):
    x: np.ndarray
    """East [m]."""
    y: np.ndarray
    """North [m]."""
    yaw: np.ndarray
    """Counter-clockwise from +x [rad]."""


def wrap_angle(angle: np.ndarray | float) -> np.ndarray:
    """Wrap angles to (-pi, pi]."""
    return np.pi - np.mod(np.pi - np.asarray(angle, dtype=np.float64), 2 * np.pi)


def _wrap(angle: float) -> float:
    """`wrap_angle` of one float, with the same arithmetic."""
    return math.pi - (math.pi - angle) % (2 * math.pi)


@dataclass(eq=False)
class Track:
    """A closed-loop road. Build one with `generate_track` or `load_track`.

    The start line is at the first centreline point; travel is in the order
    of the points. Lane 0 is the rightmost lane in the travel direction; the
    car keeps to it.
    """

    centreline: np.ndarray
    """(N, 2) float64 centreline points [m]; the loop closes from the last point back to the first."""
    width: float
    """Road width, edge to edge [m]."""
    lanes: int = 1
    """Number of lanes, 1 or 2."""
    seed: int | None = None
    """Generator seed, if the track was generated."""
    config: TrackConfig | None = None
    """Generator config, if the track was generated."""
    name: str = ""
    """A short label (file stem for bundled tracks)."""

    s: np.ndarray = field(init=False, repr=False)
    """(N,) arc length at each centreline point [m]."""
    heading: np.ndarray = field(init=False, repr=False)
    """(N,) direction of the centreline at each point [rad]."""
    curvature: np.ndarray = field(init=False, repr=False)
    """(N,) signed curvature at each point, positive = bending left [1/m]."""
    length: float = field(init=False)
    """Centreline length of one lap [m]."""

    def __post_init__(self) -> None:
        points = np.asarray(self.centreline, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or len(points) < 16:
            raise TrackError("centreline must be an (N, 2) array with at least 16 points")
        if not np.all(np.isfinite(points)):
            raise TrackError("centreline contains non-finite coordinates")
        if self.lanes not in (1, 2):
            raise TrackError(f"lanes must be 1 or 2, got {self.lanes}")
        if not (np.isfinite(self.width) and self.width > 0):
            raise TrackError(f"width must be positive, got {self.width}")
        self.centreline = points
        segment = np.roll(points, -1, axis=0) - points
        seg_len = np.hypot(segment[:, 0], segment[:, 1])
        if np.any(seg_len < 1e-6):
            raise TrackError("centreline has repeated consecutive points")
        self._segment = segment
        self._seg_len = seg_len
        self.s = np.concatenate([[0.0], np.cumsum(seg_len[:-1])])
        self.length = float(seg_len.sum())
        seg_heading = np.arctan2(segment[:, 1], segment[:, 0])
        # Heading at a vertex: the mean direction of its two segments.
        before = np.roll(seg_heading, 1)
        turn = wrap_angle(seg_heading - before)
        self.heading = wrap_angle(before + turn / 2)
        ds = (seg_len + np.roll(seg_len, 1)) / 2
        raw = turn / ds
        # A short circular moving average removes the jitter that millimetre
        # rounding of stored points adds to a second derivative.
        kernel = np.ones(5) / 5
        padded = np.concatenate([raw[-2:], raw, raw[:2]])
        self.curvature = np.convolve(padded, kernel, mode="valid")
        self._tree = cKDTree(points)
        self._inv_seg_len2 = 1.0 / seg_len**2
        # Plain lists and 1-D columns for `project_near`, which runs every simulation step.
        self._s_list = self.s.tolist()
        self._seg_len_list = seg_len.tolist()
        self._heading_list = self.heading.tolist()
        self._columns = tuple(np.ascontiguousarray(a) for a in (points[:, 0], points[:, 1], segment[:, 0], segment[:, 1]))

    # ----------------------------------------------------------------- queries
    def project(
        self,
        x: np.ndarray | float,
        y: np.ndarray | float,
        yaw: np.ndarray | float | None = None,
        near_s: float | None = None,
        nearest: np.ndarray | None = None,
    ) -> Projection:
        """Nearest centreline point for each (x, y): progress, signed offset and heading error.

        With `near_s` [m], only the centreline within `NEAR_WINDOW` of that
        progress is searched: much faster for a car whose last position is
        known, and never confused by another part of the road nearby. With
        `nearest` (each point's nearest centreline point index, as from
        `nearest_points`, shaped like the points), no search is done.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        shape = np.broadcast_shapes(x.shape, y.shape)
        px = np.broadcast_to(x, shape).reshape(-1, 1)
        py = np.broadcast_to(y, shape).reshape(-1, 1)
        if near_s is None:
            if nearest is None:
                _, nearest = self._tree.query(np.column_stack([px[:, 0], py[:, 0]]))
            else:
                nearest = np.broadcast_to(np.asarray(nearest, dtype=np.int64), shape).ravel()
            # The nearest point lies on one of the two segments that meet at
            # the nearest vertex; test both and keep the closer foot point.
            candidates = np.stack([(nearest - 1) % len(self.centreline), nearest], axis=1)
        else:
            # One window shared by every point, (1, M): a car's centre and corners project in one go.
            candidates = self._window(near_s)[None, :]
        rel_x, rel_y, seg_x, seg_y, t, dist2 = self._feet(px, py, candidates)
        best = np.argmin(dist2, axis=1)
        rows = np.arange(len(px))
        window_rows = rows if candidates.shape[0] > 1 else 0  # per-point candidates, or the one shared window
        index = candidates[window_rows, best]
        t_best = t[rows, best]
        s = np.mod(self.s[index] + t_best * self._seg_len[index], self.length)
        cross = seg_x[window_rows, best] * rel_y[rows, best] - seg_y[window_rows, best] * rel_x[rows, best]
        offset = np.copysign(np.sqrt(dist2[rows, best]), cross)
        if yaw is None:
            heading_error = np.full_like(s, np.nan)
        else:
            road_heading = self._heading_at_segment(index, t_best)
            heading_error = wrap_angle(np.broadcast_to(np.asarray(yaw, dtype=np.float64), shape).ravel() - road_heading)
        return Projection(s.reshape(shape), offset.reshape(shape), heading_error.reshape(shape))

    def nearest_points(self, x: np.ndarray, y: np.ndarray, guess: np.ndarray) -> np.ndarray:
        """Index of the centreline point nearest each (x, y) (1-D arrays), walked to from `guess`, an index
        near it for each point: each step moves to whichever neighbour along the centreline is nearer.

        The walk ends at the first point nearer than both its neighbours, which is the nearest of all unless
        the guess lies on another stretch of road that is nearly as close (a point about midway between
        two parts of a hairpin). With guesses a few points off it costs a fraction of a tree search.
        """
        count = len(self._columns[0])
        index = np.asarray(guess, dtype=np.int64) % count
        point_x, point_y = self._columns[0], self._columns[1]

        def dist2(points: np.ndarray, vertices: np.ndarray) -> np.ndarray:
            return (x[points] - point_x[vertices]) ** 2 + (y[points] - point_y[vertices]) ** 2

        todo = np.arange(len(index))
        here = dist2(todo, index)
        for _ in range(count):  # a walk never passes every point
            if len(todo) == 0:
                break
            ahead, behind = (index[todo] + 1) % count, (index[todo] - 1) % count
            d_ahead, d_behind = dist2(todo, ahead), dist2(todo, behind)
            back = (d_behind < here) & (d_behind <= d_ahead)
            on = (d_ahead < here) & ~back
            moved = back | on
            index[todo[back]], index[todo[on]] = behind[back], ahead[on]
            here = np.where(back, d_behind, d_ahead)[moved]
            todo = todo[moved]
        return index

    def project_near(self, x: float, y: float, yaw: float, near_s: float) -> tuple[float, float, float]:
        """`project(x, y, yaw, near_s)` of one point as plain floats (s, lateral offset, heading error):
        the same numbers, bit for bit, for a fraction of the cost of the array version."""
        candidates = self._window(near_s)
        rel_x, rel_y, seg_x, seg_y, t, dist2 = self._feet(x, y, candidates)
        best = int(dist2.argmin())
        index, t_best = int(candidates[best]), float(t[best])
        s = (self._s_list[index] + t_best * self._seg_len_list[index]) % self.length
        cross = float(seg_x[best]) * float(rel_y[best]) - float(seg_y[best]) * float(rel_x[best])
        offset = math.copysign(math.sqrt(float(dist2[best])), cross)
        heading, heading_next = self._heading_list[index], self._heading_list[(index + 1) % len(self._heading_list)]
        road_heading = _wrap(heading + t_best * _wrap(heading_next - heading))
        return s, offset, _wrap(yaw - road_heading)

    def distance_near(self, x: np.ndarray, y: np.ndarray, near_s: float) -> np.ndarray:
        """|lateral offset| of points (x, y) (1-D arrays) from `project(x, y, near_s=near_s)`, bit for bit,
        without the progress, sign and heading the simulation's off-road test does not need."""
        dist2 = self._feet(x[:, None], y[:, None], self._window(near_s))[5]
        return np.sqrt(dist2.min(axis=1))

    def pose_at(self, s: np.ndarray | float, lateral_offset: np.ndarray | float = 0.0) -> Pose:
        """Point at progress `s` [m] (any real; wraps around), shifted left by `lateral_offset` [m]."""
        index, t = self._locate(s)
        start = self.centreline[index]
        seg = self._segment[index]
        heading = self._heading_at_segment(index, t)
        offset = np.asarray(lateral_offset, dtype=np.float64)
        x = start[..., 0] + t * seg[..., 0] - offset * np.sin(heading)
        y = start[..., 1] + t * seg[..., 1] + offset * np.cos(heading)
        return Pose(x, y, heading)

    def curvature_at(self, s: np.ndarray | float) -> np.ndarray:
        """Signed centreline curvature at progress `s` [1/m], positive = bending left."""
        return self.sample(self.curvature, s)

    def sample(self, values: np.ndarray, s: np.ndarray | float) -> np.ndarray:
        """Linear interpolation at progress `s` [m] of `values` given at each centreline point."""
        index, t = self._locate(s)
        nxt = (index + 1) % len(self.centreline)
        return (1 - t) * values[index] + t * values[nxt]

    def on_road(self, points: np.ndarray) -> np.ndarray:
        """For (..., 2) points [m], True where the point is on the asphalt."""
        points = np.asarray(points, dtype=np.float64)
        projection = self.project(points[..., 0], points[..., 1])
        return np.abs(projection.lateral_offset) <= self.width / 2

    def lane_center_offset(self, lane: int = 0) -> float:
        """Lateral offset of a lane's centre from the centreline [m]; lane 0 is the rightmost."""
        if not 0 <= lane < self.lanes:
            raise TrackError(f"lane {lane} does not exist on a {self.lanes}-lane track")
        lane_width = self.width / self.lanes
        return -self.width / 2 + lane_width * (lane + 0.5)

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(left, right) road edge polylines, each (N, 2) [m]."""
        normal = np.column_stack([-np.sin(self.heading), np.cos(self.heading)])
        half = self.width / 2
        return self.centreline + half * normal, self.centreline - half * normal

    def polygon(self, margin: float = 0.0) -> shapely.Polygon:
        """The road surface (centreline buffered by half the width plus `margin`) as a shapely polygon."""
        ring = shapely.LinearRing(self.centreline)
        return shapely.buffer(ring, self.width / 2 + margin, quad_segs=8)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the road surface [m]."""
        half = self.width / 2
        lo = self.centreline.min(axis=0) - half
        hi = self.centreline.max(axis=0) + half
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    # ----------------------------------------------------------------- helpers
    def _locate(self, s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        s = np.mod(np.asarray(s, dtype=np.float64), self.length)
        # s is in [0, length) and self.s[0] == 0, so the index is always in range.
        index = np.searchsorted(self.s, s, side="right") - 1
        t = (s - self.s[index]) / self._seg_len[index]
        return index, t

    def _window(self, near_s: float) -> np.ndarray:
        """(M,) indices of the segments within `NEAR_WINDOW` of progress `near_s` [m], wrapping round the loop.

        Bounded by arc length, not by a count of points: one near-duplicate point in a hand-made track
        would otherwise make every step search thousands of segments."""
        count = len(self._s_list)
        if 2 * NEAR_WINDOW >= self.length:
            return np.arange(count)
        s = near_s % self.length
        first = bisect.bisect_right(self._s_list, (s - NEAR_WINDOW) % self.length) - 1  # as `_locate`
        last = bisect.bisect_right(self._s_list, (s + NEAR_WINDOW) % self.length) - 1
        return np.arange(first, first + (last - first) % count + 1) % count

    def _feet(self, px: Any, py: Any, candidates: np.ndarray) -> tuple[np.ndarray, ...]:
        """Foot points of (px, py) on the segments starting at `candidates`, shapes broadcasting:
        (rel_x, rel_y) from each segment's start, the segment (seg_x, seg_y), the clipped parameter t
        and the squared distance. Plain 2-vector arithmetic: it runs every simulation step."""
        point_x, point_y, seg_x, seg_y = (column.take(candidates) for column in self._columns)
        rel_x = px - point_x
        rel_y = py - point_y
        t = (rel_x * seg_x + rel_y * seg_y) * self._inv_seg_len2.take(candidates)
        np.clip(t, 0.0, 1.0, out=t)
        gap_x = rel_x - t * seg_x
        gap_y = rel_y - t * seg_y
        return rel_x, rel_y, seg_x, seg_y, t, gap_x * gap_x + gap_y * gap_y

    def _heading_at_segment(self, index: np.ndarray, t: np.ndarray) -> np.ndarray:
        nxt = (index + 1) % len(self.centreline)
        turn = wrap_angle(self.heading[nxt] - self.heading[index])
        return wrap_angle(self.heading[index] + t * turn)
