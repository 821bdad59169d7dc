"""The `Driver` protocol: anything that turns the current situation into controls.

The episode loop hands every driver the world and the camera frames of this
step. An expert reads the world (it is privileged); a network reads only the
frames; a human reads the keyboard. They are interchangeable.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Protocol, runtime_checkable

import numpy as np

from drivesim.sim.car import Controls
from drivesim.sim.world import World


class DriverKind(IntEnum):
    """Who is driving; stored as `meta/driver` in recordings."""

    EXPERT = 0
    POLICY = 1
    HUMAN = 2


@runtime_checkable
class Driver(Protocol):
    kind: DriverKind
    """Recorded as `meta/driver` for the frames this driver controls."""

    def reset(self, world: World) -> None:
        """Called at the start of every episode."""

    def act(self, world: World, frames: Mapping[str, np.ndarray]) -> Controls:
        """Controls for this step, given the world and this step's camera frames."""
