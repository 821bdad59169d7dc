"""`CameraRig`: the car's cameras, rendered together for one step.

`center` looks straight ahead from `CameraConfig.lateral_offset`; `left` and
`right` sit `RigConfig.side_offset` further left and right with the same
orientation, as NVIDIA's PilotNet records them: a side camera sees the road
as the centre camera would after drifting sideways, which is what recovery
training needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drivesim.config import CameraConfig, RigConfig
from drivesim.render.camera import HasPose, camera_intrinsics, camera_pose
from drivesim.render.look import Look, get_look
from drivesim.render.randomization import REFERENCE, Appearance
from drivesim.render.scene import Scene
from drivesim.render.view import render_look

_SIDE = {"center": 0.0, "left": 1.0, "right": -1.0}


class CameraRig:
    """The cameras of a `RigConfig`; renders them all for a car pose."""

    def __init__(self, config: RigConfig | None = None) -> None:
        self.config = config or RigConfig()
        self._jittered: tuple[Appearance | None, CameraConfig] = (None, self.config.camera)

    def lateral_shift(self, name: str) -> float:
        """How far camera `name` sits left of the centre camera [m]."""
        return _SIDE[name] * self.config.side_offset

    def render(
        self,
        scene: Scene,
        car: HasPose,
        appearance: Appearance = REFERENCE,
        rng: np.random.Generator | None = None,
    ) -> dict[str, np.ndarray]:
        """RGB uint8 frame of each camera, by name, for a car at `car` (x, y, yaw of its centre).

        The appearance's camera jitter is applied to the mounting. `rng` feeds
        the sensor noise; it is required when the appearance has any.
        """
        return self.render_look(get_look(scene, appearance), car, rng)

    def render_look(self, look: Look, car: HasPose, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """`render` for an already built `Look` (a scene in one appearance), which the caller keeps."""
        appearance = look.appearance
        if rng is None:
            if appearance.noise_std > 0:
                raise ValueError("an appearance with sensor noise needs an rng")
            rng = np.random.default_rng(0)
        if self._jittered[0] is not appearance:  # one CameraConfig per episode, not per frame
            self._jittered = (appearance, appearance.apply_to_camera(self.config.camera))
        camera = self._jittered[1]
        return {name: render_look(look, camera, camera_pose(car, camera, self.lateral_shift(name)), rng) for name in self.config.cameras}

    def intrinsics(self, appearance: Appearance | None = None) -> dict[str, Any]:
        """JSON-ready description of each camera: pinhole intrinsics and mounting on the car.

        Mounting: `forward` and `left` of the car's centre, `height` above the
        ground [m], `pitch` down and `yaw` left [rad]. With an `appearance`,
        its camera jitter is included.
        """
        camera: CameraConfig = self.config.camera
        if appearance is not None:
            camera = appearance.apply_to_camera(camera)
        result: dict[str, Any] = {}
        for name in self.config.cameras:
            entry: dict[str, Any] = camera_intrinsics(camera)
            entry["mount"] = {
                "forward": camera.forward_offset,
                "left": camera.lateral_offset + self.lateral_shift(name),
                "height": camera.mount_height,
                "pitch": camera.pitch,
                "yaw": camera.yaw_offset,
            }
            result[name] = entry
        return result
