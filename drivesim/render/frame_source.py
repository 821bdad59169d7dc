"""`RigView`: the episode loop's frame source, a track's scene seen through a camera rig.

It owns what rendering needs across steps: the scene (built once per
track), this episode's appearance, and the random stream of the sensor
noise. `start_episode` draws a new appearance; `render(world)` gives the
frames of the current step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drivesim.config import RandomizationConfig, RigConfig
from drivesim.render.randomization import REFERENCE, sample_appearance
from drivesim.render.rig import CameraRig
from drivesim.render.scene import build_scene
from drivesim.sim.world import World
from drivesim.track.geometry import Track


class RigView:
    """Frames of `rig` cameras on `track`, with a per-episode appearance drawn from `randomization`."""

    def __init__(self, track: Track, rig: RigConfig, randomization: RandomizationConfig) -> None:
        self.scene = build_scene(track)
        self.rig = CameraRig(rig)
        self.randomization = randomization
        self.appearance = REFERENCE
        """The current episode's look."""
        self._noise_rng = np.random.default_rng(0)

    def start_episode(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw this episode's appearance from `rng`; returns it as JSON-ready data (with the jittered cameras)."""
        self.appearance = sample_appearance(self.randomization, rng)
        self._noise_rng = np.random.default_rng(rng.integers(2**63))
        return {"appearance": self.appearance.to_dict(), "cameras": self.rig.intrinsics(self.appearance)}

    def render(self, world: World) -> dict[str, np.ndarray]:
        return self.rig.render(self.scene, world.car, self.appearance, self._noise_rng)

    def intrinsics(self) -> dict[str, Any]:
        """The rig's nominal cameras (before per-episode jitter), JSON-ready."""
        return self.rig.intrinsics()

    def close(self) -> None:
        """Drop the per-episode looks cached on the scene now (a few MB each), for a caller that
        keeps the view; dropping the view frees the scene and its looks as well."""
        self.scene.cache.clear()

    def camera_shapes(self) -> dict[str, tuple[int, int]]:
        """Camera name -> (height, width) [px]."""
        camera = self.rig.config.camera
        return {name: (camera.height, camera.width) for name in self.rig.config.cameras}
