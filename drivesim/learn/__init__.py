"""Driving networks, their preprocessing and augmentation, training, checkpoints."""

from drivesim.learn.augment import AugmentConfig, augment, correct_for_camera
from drivesim.learn.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from drivesim.learn.models import ARCHITECTURES, DrivingNet, ModelConfig, build_model, parameter_count
from drivesim.learn.preprocess import Preprocessing

__all__ = [
    "ARCHITECTURES",
    "AugmentConfig",
    "Checkpoint",
    "CheckpointError",
    "DrivingNet",
    "ModelConfig",
    "Preprocessing",
    "augment",
    "build_model",
    "correct_for_camera",
    "load_checkpoint",
    "parameter_count",
    "save_checkpoint",
]
