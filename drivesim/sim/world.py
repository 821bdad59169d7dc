"""`World`: one car on one track, advanced in fixed time steps.

The world knows where the car is relative to the road (progress, laps,
lateral offset, off-road, crash) and nothing about pixels: cameras are asked
for frames by the episode loop, never by `World.step`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drivesim.config import CarConfig, WorldConfig
from drivesim.sim.car import CarState, Controls, footprint, step_car
from drivesim.track.geometry import Track


@dataclass(frozen=True)
class RoadState:
    """Where the car is relative to the road after a step."""

    s: float
    """Progress along the centreline within the lap [m]."""
    progress: float
    """Signed distance driven along the road since reset [m]; negative when going backwards."""
    laps: int
    """Completed laps since reset."""
    lateral_offset: float
    """Offset of the car's centre from its lane centre, positive = left [m]."""
    road_offset: float
    """Offset of the car's centre from the road centreline, positive = left [m]."""
    heading_error: float
    """Car yaw minus road heading, in (-pi, pi] [rad]."""
    curvature: float
    """Road curvature at the car, positive = bending left [1/m]."""
    off_road: bool
    """Some corner of the car's footprint is off the asphalt."""
    crashed: bool
    """The centre is more than `WorldConfig.crash_margin` beyond the edge, or the car faces the wrong way."""


def _half_diagonal(config: CarConfig) -> float:
    """Distance from the car's centre to each corner of its footprint [m]."""
    return math.hypot(config.length / 2, config.width / 2)


class World:
    """A track, a car on it and the clock. Many worlds may live in one process."""

    def __init__(
        self,
        track: Track,
        car_config: CarConfig | None = None,
        config: WorldConfig | None = None,
        lane: int = 0,
    ) -> None:
        self.track = track
        self.car_config = car_config or CarConfig()
        self.config = config or WorldConfig()
        self.lane = lane
        self.lane_offset = track.lane_center_offset(lane)
        """Offset of the driving lane's centre from the centreline [m]."""
        self.reset()

    @property
    def dt(self) -> float:
        """Time step [s]."""
        return self.car_config.dt

    def reset(self, s: float = 0.0, lateral_offset: float = 0.0, yaw_offset: float = 0.0, speed: float = 0.0) -> RoadState:
        """Place the car at progress `s` [m], `lateral_offset` [m] left of its lane centre, at rest by default."""
        pose = self.track.pose_at(s, self.lane_offset + lateral_offset)
        self.car = CarState(float(pose.x), float(pose.y), float(pose.yaw) + yaw_offset, speed)
        self.time = 0.0
        """Simulated seconds since reset [s]."""
        self.steps = 0
        self._start_s = float(np.mod(s, self.track.length))
        self._progress = 0.0
        self._last_s = self._start_s
        self.road = self._measure()
        return self.road

    def respawn(self, speed: float = 0.0) -> RoadState:
        """Put the car back on its lane centre at its current progress, facing along the road; time and progress go on."""
        pose = self.track.pose_at(self.road.s, self.lane_offset)
        self.car = CarState(float(pose.x), float(pose.y), float(pose.yaw), speed)
        self.road = self._measure()
        return self.road

    def step(self, controls: Controls) -> RoadState:
        """Advance one time step under `controls`; returns the new road state."""
        self.car = step_car(self.car, controls, self.car_config)
        self.time += self.dt
        self.steps += 1
        self.road = self._measure()
        return self.road

    def _measure(self) -> RoadState:
        car = self.car
        s, road_offset, heading_error = self.track.project_near(car.x, car.y, car.yaw, self._last_s)
        half_width = self.track.width / 2
        # Distance to the centreline changes by at most the distance moved, so while the centre is more than
        # the half-diagonal inside the edge no corner can be off the asphalt; only nearer the edge are the
        # corners projected (from the same stretch of road, so the answer is what projecting them gives).
        off_road = False
        if abs(road_offset) + _half_diagonal(self.car_config) + 1e-9 >= half_width:
            corners = footprint(car, self.car_config)
            off_road = bool(np.any(self.track.distance_near(corners[:, 0], corners[:, 1], self._last_s) > half_width))
        length = self.track.length
        # Progress accumulates the wrapped change in s, so crossing the start
        # line counts as moving forward, not as a jump back by a lap.
        self._progress += (s - self._last_s + length / 2) % length - length / 2
        self._last_s = s
        crashed = abs(road_offset) > half_width + self.config.crash_margin or abs(heading_error) > self.config.wrong_way_angle
        return RoadState(
            s=s,
            progress=self._progress,
            laps=max(0, math.floor(self._progress / length)),
            lateral_offset=road_offset - self.lane_offset,
            road_offset=road_offset,
            heading_error=heading_error,
            curvature=float(self.track.curvature_at(s)),
            off_road=off_road,
            crashed=crashed,
        )
