import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivesim.config import CarConfig
from drivesim.sim import CarState, Controls, step_car

CONFIG = CarConfig()


def drive(controls: Controls, steps: int, state: CarState | None = None) -> CarState:
    state = state or CarState(0.0, 0.0, 0.0, 10.0)
    for _ in range(steps):
        state = step_car(state, controls, CONFIG)
    return state


def test_zero_steering_goes_straight():
    state = drive(Controls(0.0, 0.0), 100)
    assert state.y == 0.0 and state.yaw == 0.0 and state.x > 40


def test_positive_steering_turns_left():
    state = drive(Controls(0.5, 0.0), 20)
    assert state.yaw > 0 and state.y > 0
    right = drive(Controls(-0.5, 0.0), 20)
    assert right.yaw < 0 and right.y < 0


def test_steady_turn_radius_matches_bicycle_model():
    """The path the car drives, once the steering has settled, is the kinematic bicycle's circle."""
    steer = 0.3
    state, points = CarState(0, 0, 0, 5.0), []
    for step in range(400):
        state = step_car(state, Controls(steer / CONFIG.max_steer, 0.0), CONFIG)
        if step in (300, 330, 360):
            points.append((state.x, state.y))
    assert state.steer == pytest.approx(steer)
    # Centre of a kinematic bicycle circles at R = L / (cos(beta) tan(delta)), beta = atan(tan(delta)/2).
    beta = math.atan(0.5 * math.tan(steer))
    expected = CONFIG.wheelbase / (math.cos(beta) * math.tan(steer))
    (ax, ay), (bx, by), (cx, cy) = points
    sides = math.dist(points[0], points[1]) * math.dist(points[1], points[2]) * math.dist(points[0], points[2])
    twice_area = abs((bx - ax) * (cy - ay) - (by - ay) * (cx - ax))
    assert sides / (2 * twice_area) == pytest.approx(expected, rel=1e-3)  # the circle through the three points


def test_steering_rate_is_limited():
    state = drive(Controls(1.0, 0.0), 1)
    assert state.steer == pytest.approx(CONFIG.max_steer_rate * CONFIG.dt)


@given(throttle=st.floats(-1, 1), steps=st.integers(1, 200))
def test_speed_stays_within_limits(throttle, steps):
    state = drive(Controls(0.0, throttle), steps)
    assert 0.0 <= state.speed <= CONFIG.max_speed


def test_brake_stops_and_never_reverses():
    state = drive(Controls(0.0, -1.0), 60)
    assert state.speed == 0.0
