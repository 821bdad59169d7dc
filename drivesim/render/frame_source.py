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
from drivesim.render.look import Look, get_look
from drivesim.render.randomization import REFERENCE, sample_appearance
from drivesim.render.rig import CameraRig
from drivesim.render.scene import Scene, build_scene
from drivesim.sim.world import World
from drivesim.track.geometry import Track


class RigView:
    """Frames of `rig` cameras on `track`, with a per-episode appearance drawn from `randomization`.

    `scene` may be one already built for `track`: views of the same track (its looks in an evaluation)
    can share it, as each view keeps its own `Look`."""

    def __init__(self, track: Track, rig: RigConfig, randomization: RandomizationConfig, scene: Scene | None = None) -> None:
        if scene is not None and scene.track is not track:
            raise ValueError("the scene given to a RigView must be of its track")
        self.scene = scene if scene is not None else build_scene(track)
        self.rig = CameraRig(rig)
        self.randomization = randomization
        self.appearance = REFERENCE
        """The current episode's appearance."""
        self._look: Look | None = None
        self._noise_rng = np.random.default_rng(0)

    def start_episode(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw this episode's appearance from `rng`; returns it as JSON-ready data (with the jittered cameras)."""
        self.appearance = sample_appearance(self.randomization, rng)
        self._noise_rng = np.random.default_rng(rng.integers(2**63))
        return {"appearance": self.appearance.to_dict(), "cameras": self.rig.intrinsics(self.appearance)}

    def render(self, world: World, noise_rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """The frames of `world`'s current step. Sensor noise comes from `noise_rng` if given, else from the
        episode's own stream, which every frame advances (so a frame depends on how many came before it)."""
        # The view holds its look: the scene's own cache keeps only a few, and views sharing a scene take turns.
        if self._look is None or self._look.appearance is not self.appearance:
            self._look = get_look(self.scene, self.appearance)
        return self.rig.render_look(self._look, world.car, noise_rng if noise_rng is not None else self._noise_rng)

    def intrinsics(self) -> dict[str, Any]:
        """The rig's nominal cameras (before per-episode jitter), JSON-ready."""
        return self.rig.intrinsics()

    def close(self) -> None:
        """Drop the per-episode looks cached on the scene now (a few MB each), for a caller that
        keeps the view; dropping the view frees the scene and its looks as well."""
        self.scene.cache.clear()
        self._look = None

    def camera_shapes(self) -> dict[str, tuple[int, int]]:
        """Camera name -> (height, width) [px]."""
        camera = self.rig.config.camera
        return {name: (camera.height, camera.width) for name in self.rig.config.cameras}
