"""Drivers: interchangeable sources of controls (expert, noisy expert, network, human).

The network driver lives in `drivesim.drivers.policy` (it imports torch, so it is not imported here).
"""

from drivesim.drivers.base import Driver, DriverKind
from drivesim.drivers.expert import ExpertDriver, speed_profile
from drivesim.drivers.noise import NoisyDriver

__all__ = ["Driver", "DriverKind", "ExpertDriver", "NoisyDriver", "speed_profile"]
