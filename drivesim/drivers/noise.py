"""DART-style noise injection (Laskey et al. 2017).

`NoisyDriver` wraps any driver and perturbs the controls it executes with a
seeded Ornstein-Uhlenbeck process. The episode loop still asks the clean
expert for the label, so recordings show the car drifting off the ideal line
and the label that brings it back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from drivesim.config import NoiseConfig
from drivesim.drivers.base import Driver
from drivesim.sim.car import Controls
from drivesim.sim.world import World


class NoisyDriver:
    """Executes `inner`'s controls plus temporally correlated noise."""

    def __init__(self, inner: Driver, config: NoiseConfig, rng: np.random.Generator) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.config = config
        self.rng = rng
        self._state = np.zeros(2)

    def reset(self, world: World) -> None:
        self.inner.reset(world)
        self._state = np.zeros(2)

    def act(self, world: World, frames: Mapping[str, np.ndarray]) -> Controls:
        clean = self.inner.act(world, frames)
        std = np.array([self.config.steering_std, self.config.throttle_std])
        # The exact discretization of the OU process: whatever dt / correlation_time, the stationary standard
        # deviation is `std` and the correlation after k steps exp(-k dt / correlation_time).
        keep = math.exp(-world.dt / self.config.correlation_time)
        self._state = self._state * keep + std * math.sqrt(1 - keep * keep) * self.rng.standard_normal(2)
        return Controls(clean.steering + self._state[0], clean.throttle + self._state[1]).clipped()
