"""The pinhole camera model: poses, intrinsics, projection and the ground homography.

Camera frame (OpenCV): x right, y down, z forward along the optical axis.
Pixel centres sit at integer coordinates, (0, 0) at the top-left pixel, and
the principal point is the image centre, `((W - 1) / 2, (H - 1) / 2)`.
Pixels are square: `fy == fx`, with `fx` set by the horizontal field of view.
The car is assumed level (no roll, no body pitch), so the horizon is a
straight image row and ground distance depends on the row alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from drivesim.config import CameraConfig


class HasPose(Protocol):
    """Anything with a planar pose, such as `drivesim.sim.car.CarState`."""

    x: float
    y: float
    yaw: float


@dataclass(frozen=True)
class CameraPose:
    """Where a camera is and where it looks, in the world frame."""

    x: float
    """East position of the lens [m]."""
    y: float
    """North position of the lens [m]."""
    z: float
    """Height of the lens above the ground [m]."""
    yaw: float
    """Viewing direction, counter-clockwise from +x [rad]."""
    pitch: float
    """Downward tilt below the horizontal [rad]."""


def camera_pose(car: HasPose, camera: CameraConfig, extra_lateral: float = 0.0) -> CameraPose:
    """Pose of `camera` mounted on a car at `car` (its centre), shifted `extra_lateral` [m] further left."""
    cos_yaw, sin_yaw = math.cos(car.yaw), math.sin(car.yaw)
    lateral = camera.lateral_offset + extra_lateral
    x = car.x + camera.forward_offset * cos_yaw - lateral * sin_yaw
    y = car.y + camera.forward_offset * sin_yaw + lateral * cos_yaw
    return CameraPose(x, y, camera.mount_height, car.yaw + camera.yaw_offset, camera.pitch)


def focal_length(camera: CameraConfig) -> float:
    """Focal length in pixels, from the horizontal field of view [px]."""
    return camera.width / 2 / math.tan(camera.fov / 2)


def intrinsic_matrix(camera: CameraConfig) -> np.ndarray:
    """3x3 matrix K mapping camera-frame directions to homogeneous pixels."""
    f = focal_length(camera)
    return np.array([[f, 0.0, (camera.width - 1) / 2], [0.0, f, (camera.height - 1) / 2], [0.0, 0.0, 1.0]])


def rotation(pose: CameraPose) -> np.ndarray:
    """3x3 rotation taking world-frame vectors to the camera frame (rows: right, down, forward)."""
    cy, sy = math.cos(pose.yaw), math.sin(pose.yaw)
    cp, sp = math.cos(pose.pitch), math.sin(pose.pitch)
    # down = forward x right, written out (np.cross costs more than a frame's worth of this).
    return np.array([[sy, -cy, 0.0], [-sp * cy, -sp * sy, -cp], [cy * cp, sy * cp, -sp]])


def to_camera(world_xyz: np.ndarray, pose: CameraPose) -> np.ndarray:
    """(..., 3) world points [m] in the camera frame [m]."""
    centre = np.array([pose.x, pose.y, pose.z])
    return (np.asarray(world_xyz, dtype=np.float64) - centre) @ rotation(pose).T


def project_points(world_xyz: np.ndarray, pose: CameraPose, camera: CameraConfig) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (..., 2) of world points (..., 3) [m], and their depth along the optical axis (...) [m].

    Points behind the camera (depth <= 0) get NaN pixel coordinates.
    """
    cam = to_camera(world_xyz, pose)
    depth = cam[..., 2]
    f = focal_length(camera)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = f * cam[..., 0] / depth + (camera.width - 1) / 2
        v = f * cam[..., 1] / depth + (camera.height - 1) / 2
    uv = np.stack([u, v], axis=-1)
    uv[depth <= 0] = np.nan
    return uv, depth


def ground_homography(pose: CameraPose, camera: CameraConfig) -> np.ndarray:
    """3x3 homography taking ground points (x, y, 1) [m] to homogeneous pixels (u, v, 1)."""
    rot = rotation(pose)
    translation = -rot @ np.array([pose.x, pose.y, pose.z])
    return intrinsic_matrix(camera) @ np.column_stack([rot[:, 0], rot[:, 1], translation])


def image_to_ground(pose: CameraPose, camera: CameraConfig) -> np.ndarray:
    """3x3 homography taking homogeneous pixels (u, v, 1) to ground points (x, y, 1) [m].

    The inverse of `ground_homography`, written out in scalars because it is
    needed every frame and a generic 3x3 inverse costs more than the render.
    Pixels at or above the horizon map to points behind the camera.
    """
    f = focal_length(camera)
    cx, cy = (camera.width - 1) / 2, (camera.height - 1) / 2
    c_yaw, s_yaw = math.cos(pose.yaw), math.sin(pose.yaw)
    c_pitch, s_pitch = math.cos(pose.pitch), math.sin(pose.pitch)
    right = (s_yaw, -c_yaw, 0.0)
    down = (-s_pitch * c_yaw, -s_pitch * s_yaw, -c_pitch)
    forward = (c_yaw * c_pitch, s_yaw * c_pitch, -s_pitch)
    # World direction of the ray through (u, v): rows x, y, z of [right/f, down/f, forward - (cx right + cy down)/f].
    ray = [(right[i] / f, down[i] / f, forward[i] - (cx * right[i] + cy * down[i]) / f) for i in range(3)]
    # The ray meets the ground at C - h * ray / ray_z; homogeneous with w = ray_z.
    h = pose.z
    return np.array(
        [
            [pose.x * ray[2][j] - h * ray[0][j] for j in range(3)],
            [pose.y * ray[2][j] - h * ray[1][j] for j in range(3)],
            list(ray[2]),
        ]
    )


def horizon_row(camera: CameraConfig, pitch: float | None = None) -> float:
    """Image row of the horizon (fractional; pixel centres are integers)."""
    pitch = camera.pitch if pitch is None else pitch
    return (camera.height - 1) / 2 - focal_length(camera) * math.tan(pitch)


def row_ground_distance(camera: CameraConfig, rows: np.ndarray) -> np.ndarray:
    """Forward ground distance [m] seen at image `rows` on the image's centre column; inf at and above the horizon."""
    f = focal_length(camera)
    below = camera.pitch + np.arctan((np.asarray(rows, dtype=np.float64) - (camera.height - 1) / 2) / f)
    with np.errstate(divide="ignore"):
        distance = camera.mount_height / np.tan(below)
    return np.where(below > 0, distance, np.inf)


def camera_intrinsics(camera: CameraConfig) -> dict[str, float]:
    """JSON-ready intrinsics of `camera`: fx, fy, cx, cy [px], width, height [px], fov [rad]."""
    k = intrinsic_matrix(camera)
    return {
        "fx": float(k[0, 0]),
        "fy": float(k[1, 1]),
        "cx": float(k[0, 2]),
        "cy": float(k[1, 2]),
        "width": camera.width,
        "height": camera.height,
        "fov": camera.fov,
    }
