"""Drivers: interchangeable sources of controls (expert, noisy expert, network, human)."""

from drivesim.drivers.base import Driver, DriverKind
from drivesim.drivers.expert import ExpertDriver, speed_profile
from drivesim.drivers.noise import NoisyDriver

__all__ = ["Driver", "DriverKind", "ExpertDriver", "NoisyDriver", "speed_profile"]
