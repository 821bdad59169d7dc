"""A driving network as a driver.

Frames are preprocessed by the checkpoint's own `Preprocessing`, exactly as
in training. Steering comes from the network; throttle too when the network
has a throttle head, otherwise from a speed controller that uses only what a
real car knows (its speed and the steering it is applying): it slows down in
proportion to how hard the network steers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from drivesim.config import ExpertConfig, RigConfig
from drivesim.drivers.base import DriverKind
from drivesim.errors import DrivesimError
from drivesim.learn.checkpoint import Checkpoint, load_checkpoint
from drivesim.sim.car import Controls
from drivesim.sim.world import World


class PolicyError(DrivesimError):
    """A network driver cannot give a usable command."""


class PolicyDriver:
    """Drives with a trained network; `act_batch` runs one forward pass for many worlds."""

    kind = DriverKind.POLICY

    def __init__(self, checkpoint: Checkpoint | Path | str, camera: str = "center", cruise_speed: float = ExpertConfig.max_speed, slow_down: float = 2.0, speed_gain: float = 0.5) -> None:
        self.checkpoint = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        self.model = self.checkpoint.model.eval()
        self.preprocessing = self.checkpoint.preprocessing
        self.camera = camera
        """Which rig camera the network looks through."""
        self.cruise_speed = cruise_speed
        """Speed on straights when the network has no throttle head [m/s]; by default the expert's, the speed its labels were made at."""
        self.slow_down = slow_down
        """Target speed is cruise_speed / (1 + slow_down * |steering|) [-]."""
        self.speed_gain = speed_gain
        """Throttle per m/s of speed error [1/(m/s)]."""

    def reset(self, world: World) -> None:
        pass

    def act(self, world: World, frames: Mapping[str, np.ndarray]) -> Controls:
        return self.act_batch([world], [frames])[0]

    @torch.no_grad()
    def predict(self, images: np.ndarray) -> np.ndarray:
        """Network outputs (B, 1 or 2), clipped to [-1, 1], for uint8 frames (B, H, W, 3). PolicyError for
        other arrays: float frames in [0, 1] would give a confident answer to a near-black input. Frames of
        another size than the checkpoint's camera are resized by the preprocessing (eval's robustness tests
        render through another camera on purpose, with a warning)."""
        self.check_frames(images)
        batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        outputs = self.model(self.preprocessing.apply(batch))
        if not bool(torch.isfinite(outputs).all()):  # clamping would turn NaN into a full-lock command
            raise PolicyError(f"{self.checkpoint.path}: the network's output is not finite (NaN or infinity) for this frame")
        return outputs.clamp_(-1.0, 1.0).numpy()

    def check_frames(self, images: np.ndarray) -> None:
        """PolicyError unless `images` is a batch of frames as `predict` takes them."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            hint = "; for one frame, pass frame[None]" if images.ndim == 3 and images.shape[-1] == 3 else ""
            raise PolicyError(f"the network takes a batch of RGB frames (B, H, W, 3), got an array of shape {images.shape}{hint}")
        if images.dtype != np.uint8:
            raise PolicyError(f"the network takes uint8 frames (0-255, as rendered and recorded), got {images.dtype}")

    def act_batch(self, worlds: Sequence[World], frames: Sequence[Mapping[str, np.ndarray]]) -> list[Controls]:
        outputs = self.predict(np.stack([f[self.camera] for f in frames]))
        controls = []
        for world, out in zip(worlds, outputs, strict=True):
            steering = float(out[0])
            if len(out) > 1:
                throttle = float(out[1])
            else:
                target = self.cruise_speed / (1.0 + self.slow_down * abs(steering))
                throttle = self.speed_gain * (target - world.car.speed)
            controls.append(Controls(steering, throttle).clipped())
        return controls


def rig_seen_by(policy: PolicyDriver, rig: RigConfig) -> RigConfig:
    """`rig` with the camera `policy`'s training frames were made with, when its checkpoint says which: a
    network trained at 320x240, or through a wider lens, is fed what it learned from, not the default camera."""
    camera = policy.checkpoint.camera
    return rig if camera is None else replace(rig, camera=camera)
