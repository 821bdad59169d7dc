"""Driving networks, their preprocessing and augmentation, training, checkpoints.

The settings (`ModelConfig`, `Preprocessing`, `AugmentConfig`, `TrainConfig`)
live in `drivesim.learn.config` and import no torch. The rest is torch's and
is imported on first use, so checking a run's settings does not wait for
torch to load. (`augment` itself is imported from `drivesim.learn.augment`:
here the name is the module's.)
"""

from __future__ import annotations

import importlib
from typing import Any

from drivesim.learn.config import ARCHITECTURES, AugmentConfig, ModelConfig, Preprocessing, TrainConfig

__all__ = [
    "ARCHITECTURES",
    "AugmentConfig",
    "Checkpoint",
    "CheckpointError",
    "DrivingNet",
    "ModelConfig",
    "Preprocessing",
    "TrainConfig",
    "build_model",
    "correct_for_camera",
    "load_checkpoint",
    "parameter_count",
    "save_checkpoint",
]

_LAZY = {
    "Checkpoint": "drivesim.learn.checkpoint",
    "CheckpointError": "drivesim.learn.checkpoint",
    "DrivingNet": "drivesim.learn.models",
    "build_model": "drivesim.learn.models",
    "correct_for_camera": "drivesim.learn.augment",
    "load_checkpoint": "drivesim.learn.checkpoint",
    "parameter_count": "drivesim.learn.models",
    "save_checkpoint": "drivesim.learn.checkpoint",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'drivesim.learn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
