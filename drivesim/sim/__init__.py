"""Car dynamics and the world the car drives in. No rendering here."""

from drivesim.sim.car import CarState, Controls, footprint, step_car
from drivesim.sim.world import RoadState, World

__all__ = ["CarState", "Controls", "RoadState", "World", "footprint", "step_car"]
