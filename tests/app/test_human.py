"""HumanDriver without a window, and the gamepad mappings."""

from __future__ import annotations

import math

import pygame
import pytest

from drivesim.app.joystick import controller_reading, joystick_reading
from drivesim.config import ConfigError
from drivesim.drivers.base import Driver, DriverKind
from drivesim.drivers.human import HumanConfig, HumanDriver, HumanInput, apply_dead_zone
from drivesim.sim import Controls, World
from drivesim.track import load_track


@pytest.fixture
def world(track_file):
    return World(load_track(track_file))


def test_human_is_a_driver_of_kind_human(world):
    driver = HumanDriver()
    assert isinstance(driver, Driver) and driver.kind == DriverKind.HUMAN
    assert driver.act(world, {}) == Controls(0.0, 0.0)


def test_key_steering_ramps_at_the_rate_and_returns_to_centre(world):
    config = HumanConfig(steer_rate=2.0, return_rate=4.0)
    driver = HumanDriver(HumanInput(left=True), config)
    dt = world.dt
    values = [driver.act(world, {}).steering for _ in range(12)]
    assert values[:5] == pytest.approx([2.0 * dt * (k + 1) for k in range(5)])  # 0.1 per 50 ms step
    assert values[-1] == pytest.approx(1.0)  # full lock at standstill
    driver.input.left = False
    back = [driver.act(world, {}).steering for _ in range(5)]
    assert back == pytest.approx([1.0 - 4.0 * dt * (k + 1) for k in range(5)])
    driver.input.right = True
    for _ in range(20):
        steering = driver.act(world, {}).steering
    assert steering == pytest.approx(-1.0)  # right is negative (REP-103: positive = left)
    driver.input.left = True  # both held: back to centre
    for _ in range(20):
        steering = driver.act(world, {}).steering
    assert steering == pytest.approx(0.0)


def test_key_steering_shrinks_with_speed(world):
    driver = HumanDriver(HumanInput(left=True), HumanConfig(max_lateral_accel=6.0))
    car = world.car_config
    assert driver.key_steering_limit(0.0, car) == 1.0 and driver.key_steering_limit(3.0, car) == 1.0  # full lock when slow
    for speed in (8.0, 15.0, 25.0):
        limit = driver.key_steering_limit(speed, car)
        assert speed**2 * math.tan(limit * car.max_steer) / car.wheelbase == pytest.approx(6.0)  # the lateral acceleration
    assert driver.key_steering_limit(25.0, car) < driver.key_steering_limit(15.0, car) < 0.3
    world.reset(speed=15.0)
    for _ in range(30):
        steering = driver.act(world, {}).steering
    assert steering == pytest.approx(driver.key_steering_limit(15.0, car))


def test_throttle_brake_and_take_over(world):
    driver = HumanDriver(HumanInput(accelerate=True))
    assert driver.act(world, {}).throttle == 1.0
    driver.input.brake = True
    assert driver.act(world, {}).throttle == -1.0  # braking wins
    driver.input.clear()
    assert not driver.input.keys_held and driver.act(world, {}).throttle == 0.0
    driver.take_over(Controls(0.4, 0.2))
    assert driver.steering == 0.4
    assert driver.act(world, {}).steering < 0.4  # from where the wheel was, easing back to centre


def test_stick_is_used_directly_past_the_dead_zone(world):
    driver = HumanDriver(HumanInput(stick_steering=0.05, stick_throttle=-0.04), HumanConfig(dead_zone=0.1))
    assert driver.act(world, {}) == Controls(0.0, 0.0)
    driver.input.stick_steering, driver.input.stick_throttle = -0.55, 1.0
    controls = driver.act(world, {})
    assert controls.steering == pytest.approx(-0.5) and controls.throttle == 1.0
    driver.input.left = True  # a key overrides the stick and starts from where the stick was
    assert driver.act(world, {}).steering == pytest.approx(-0.5 + HumanConfig().return_rate * world.dt)
    assert apply_dead_zone(1.0, 0.2) == 1.0 and apply_dead_zone(-0.6, 0.2) == pytest.approx(-0.5)
    with pytest.raises(ConfigError):
        HumanConfig(dead_zone=1.0)


def test_a_stick_let_go_centres_the_steering_at_once(world):
    driver = HumanDriver(HumanInput(stick_steering=0.6))
    assert driver.act(world, {}).steering > 0.5
    driver.input.stick_steering = 0.0  # released: recorded controls must not go on turning the wheel
    assert driver.act(world, {}).steering == 0.0
    driver.input.left = True  # keys after the stick ramp up from centre as usual
    assert driver.act(world, {}).steering == pytest.approx(HumanConfig().steer_rate * world.dt)


def test_gamepad_mappings():
    axes = {pygame.CONTROLLER_AXIS_LEFTX: -32768, pygame.CONTROLLER_AXIS_TRIGGERRIGHT: 32767,
            pygame.CONTROLLER_AXIS_TRIGGERLEFT: 0, pygame.CONTROLLER_AXIS_RIGHTY: 0}
    assert controller_reading(lambda axis: axes.get(axis, 0)) == (1.0, 1.0)  # stick left = steer left; right trigger = throttle
    axes.update({pygame.CONTROLLER_AXIS_LEFTX: 16384, pygame.CONTROLLER_AXIS_TRIGGERRIGHT: 0, pygame.CONTROLLER_AXIS_TRIGGERLEFT: 32767})
    steering, throttle = controller_reading(lambda axis: axes.get(axis, 0))
    assert steering == pytest.approx(-0.5, abs=1e-4) and throttle == -1.0  # left trigger brakes
    axes.update({pygame.CONTROLLER_AXIS_TRIGGERLEFT: 0, pygame.CONTROLLER_AXIS_RIGHTY: -32767})
    assert controller_reading(lambda axis: axes.get(axis, 0))[1] == 1.0  # right stick up also accelerates
    assert joystick_reading([0.5, -1.0, 0.3]) == (-0.5, 1.0)
    assert joystick_reading([]) == (0.0, 0.0)
