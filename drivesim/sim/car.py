"""Kinematic bicycle model of the ego car.

The state point is the car's centre, midway between the axles. Steering and
throttle commands are normalized to [-1, 1]; the front wheels follow the
steering command no faster than `CarConfig.max_steer_rate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drivesim.config import CarConfig


@dataclass(frozen=True)
class Controls:
    """What a driver asks of the car, normalized units."""

    steering: float
    """Front-wheel angle command in [-1, 1]; positive turns left; 1 = `CarConfig.max_steer`."""
    throttle: float
    """[-1, 1]: positive accelerates, negative brakes."""

    def clipped(self) -> Controls:
        return Controls(min(1.0, max(-1.0, float(self.steering))), min(1.0, max(-1.0, float(self.throttle))))


@dataclass(frozen=True)
class CarState:
    """Pose and motion of the car at one instant."""

    x: float
    """East position of the car's centre [m]."""
    y: float
    """North position of the car's centre [m]."""
    yaw: float
    """Heading, counter-clockwise from +x [rad]."""
    speed: float
    """Forward speed, never negative [m/s]."""
    steer: float = 0.0
    """Actual front-wheel angle, positive = left [rad]."""


def step_car(state: CarState, controls: Controls, config: CarConfig) -> CarState:
    """Advance the car by one time step `config.dt`."""
    dt = config.dt
    controls = controls.clipped()
    target = controls.steering * config.max_steer
    max_change = config.max_steer_rate * dt
    steer = state.steer + min(max_change, max(-max_change, target - state.steer))

    if controls.throttle >= 0:
        accel = controls.throttle * config.max_accel
    else:
        accel = controls.throttle * config.max_brake
    accel -= config.drag * state.speed
    speed = min(config.max_speed, max(0.0, state.speed + accel * dt))

    # Integrate at the mean speed of the step; the slip angle beta turns the
    # centre's velocity towards the front wheels.
    mean_speed = 0.5 * (state.speed + speed)
    beta = math.atan(0.5 * math.tan(steer))
    yaw_rate = mean_speed * math.cos(beta) * math.tan(steer) / config.wheelbase
    mid_yaw = state.yaw + 0.5 * yaw_rate * dt
    x = state.x + mean_speed * math.cos(mid_yaw + beta) * dt
    y = state.y + mean_speed * math.sin(mid_yaw + beta) * dt
    yaw = math.remainder(state.yaw + yaw_rate * dt, 2 * math.pi)
    return CarState(x, y, yaw, speed, steer)


def footprint(state: CarState, config: CarConfig) -> np.ndarray:
    """(4, 2) corners of the car body [m]: front-left, front-right, rear-right, rear-left."""
    half_l, half_w = config.length / 2, config.width / 2
    local = np.array([[half_l, half_w], [half_l, -half_w], [-half_l, -half_w], [-half_l, half_w]])
    c, s = math.cos(state.yaw), math.sin(state.yaw)
    return local @ np.array([[c, s], [-s, c]]) + np.array([state.x, state.y])
