"""A human at the wheel: keyboard with smoothed steering, or a gamepad/joystick.

`HumanDriver` reads a `HumanInput` that the window (drivesim.app) keeps up
to date from key and joystick events; it never touches pygame itself, so it
works, and is tested, without a window.

Keys are on/off, so steering from keys is smoothed: the command moves
towards the key's target at `steer_rate` and back to centre at
`return_rate` when no steering key is held. The target shrinks with speed,
as a driver turns the wheel less on a fast road: a held key turns the car
at no more than `max_lateral_accel`, so a tap at 15 m/s is a lane change,
not a spin. A stick is analogue and is used as it is, past a small dead
zone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from drivesim.config import CarConfig, check
from drivesim.drivers.base import DriverKind
from drivesim.sim.car import Controls
from drivesim.sim.world import World


@dataclass(frozen=True)
class HumanConfig:
    """How key and stick input become controls."""

    steer_rate: float = 2.5
    """Speed at which held steering keys move the command towards their target [1/s] (0 to full in 0.4 s)."""
    return_rate: float = 3.5
    """Speed at which the command returns to centre when no steering key is held [1/s]."""
    max_lateral_accel: float = 7.0
    """Held steering keys turn the car no harder than this lateral acceleration at its speed; full lock when slow [m/s^2]."""
    dead_zone: float = 0.08
    """Stick deflections smaller than this count as centred [-]."""

    def __post_init__(self) -> None:
        check(self.steer_rate > 0 and self.return_rate > 0, "human steer_rate and return_rate must be > 0")
        check(self.max_lateral_accel > 0, "human max_lateral_accel must be > 0")
        check(0 <= self.dead_zone < 1, "human dead_zone must be in [0, 1)")


@dataclass
class HumanInput:
    """What the human is doing right now; the window updates it from events every frame."""

    left: bool = False
    """A steer-left key is held."""
    right: bool = False
    """A steer-right key is held."""
    accelerate: bool = False
    """A throttle key is held."""
    brake: bool = False
    """A brake key is held."""
    stick_steering: float = 0.0
    """Joystick steering, positive = left [-1, 1]; 0 without a joystick."""
    stick_throttle: float = 0.0
    """Joystick throttle, negative = brake [-1, 1]; 0 without a joystick."""

    def clear(self) -> None:
        """Release everything (the window lost focus, the driver changed)."""
        self.left = self.right = self.accelerate = self.brake = False
        self.stick_steering = self.stick_throttle = 0.0

    @property
    def keys_held(self) -> bool:
        return self.left or self.right or self.accelerate or self.brake


def apply_dead_zone(value: float, dead_zone: float) -> float:
    """`value` with |value| < dead_zone set to 0 and the rest rescaled to reach +-1 [-]."""
    magnitude = abs(value)
    if magnitude < dead_zone:
        return 0.0
    return float(np.sign(value)) * min(1.0, (magnitude - dead_zone) / (1.0 - dead_zone))


class HumanDriver:
    """Controls from a `HumanInput`: smoothed keys, or a stick when it is deflected."""

    kind = DriverKind.HUMAN

    def __init__(self, input: HumanInput | None = None, config: HumanConfig | None = None) -> None:
        self.input = input if input is not None else HumanInput()
        """The input state this driver reads; share it with whatever updates it."""
        self.config = config or HumanConfig()
        self.steering = 0.0
        """The smoothed steering command [-1, 1]."""
        self._stick_steers = False
        """The stick set the last command (it is then followed as it is, back to centre too)."""

    def reset(self, world: World) -> None:
        self.steering, self._stick_steers = 0.0, False

    def take_over(self, controls: Controls) -> None:
        """Start from `controls` (the steering applied until now), so grabbing the wheel does not jerk it."""
        self.steering, self._stick_steers = float(np.clip(controls.steering, -1.0, 1.0)), False

    def key_steering_limit(self, speed: float, car: CarConfig) -> float:
        """Magnitude of the key steering target at `speed` [m/s]: what turns `car` at `max_lateral_accel` [-]."""
        if speed <= 0.0:
            return 1.0
        # Kinematic bicycle: lateral acceleration = speed^2 * tan(wheel angle) / wheelbase.
        wheel = math.atan(self.config.max_lateral_accel * car.wheelbase / speed**2)
        return min(1.0, wheel / car.max_steer)

    def act(self, world: World, frames: Mapping[str, np.ndarray] | None = None) -> Controls:
        cfg, state, dt = self.config, self.input, world.dt
        stick = apply_dead_zone(state.stick_steering, cfg.dead_zone)
        key_direction = float(state.left) - float(state.right)
        if key_direction == 0.0 and stick != 0.0:
            self.steering, self._stick_steers = stick, True
        elif key_direction == 0.0 and self._stick_steers:
            self.steering, self._stick_steers = 0.0, False  # a stick let go is centred: no key-style return
        else:
            self._stick_steers = False
            target = key_direction * self.key_steering_limit(world.car.speed, world.car_config)
            # Away from centre at the steering rate; back towards it (key released, other key, or a limit
            # that shrank with speed) at the return rate.
            outward = abs(target) > abs(self.steering) and target * self.steering >= 0.0
            step = (cfg.steer_rate if outward else cfg.return_rate) * dt
            self.steering += float(np.clip(target - self.steering, -step, step))
        if state.brake:
            throttle = -1.0  # braking wins over throttle, as with two pedals
        elif state.accelerate:
            throttle = 1.0
        else:
            throttle = apply_dead_zone(state.stick_throttle, cfg.dead_zone)
        return Controls(self.steering, throttle).clipped()
