"""Camera frames: the world texture, pseudo-3D pinhole cameras, the camera rig, domain randomization.

Typical use, once per track and per episode, then every step::

    scene = build_scene(track)                                   # once per track
    appearance = sample_appearance(RandomizationConfig.preset("full"), rng)  # once per episode
    rig = CameraRig(RigConfig())
    frames = rig.render(scene, world.car, appearance, rng)       # {"center": (120, 160, 3) uint8}

pygame is never imported here; the interactive window lives in drivesim.app.
"""

from drivesim.render.camera import (
    CameraPose,
    camera_intrinsics,
    camera_pose,
    focal_length,
    ground_homography,
    horizon_row,
    intrinsic_matrix,
    project_points,
)
from drivesim.render.look import Look, get_look
from drivesim.render.randomization import REFERENCE, Appearance, sample_appearance
from drivesim.render.rig import CameraRig
from drivesim.render.scene import Scene, build_scene, scene_seed
from drivesim.render.view import render_view

__all__ = [
    "REFERENCE",
    "Appearance",
    "CameraPose",
    "CameraRig",
    "Look",
    "Scene",
    "build_scene",
    "camera_intrinsics",
    "camera_pose",
    "focal_length",
    "get_look",
    "ground_homography",
    "horizon_row",
    "intrinsic_matrix",
    "project_points",
    "render_view",
    "sample_appearance",
    "scene_seed",
]
