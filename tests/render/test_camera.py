import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivesim.config import CameraConfig
from drivesim.render import CameraPose, camera_intrinsics, camera_pose, ground_homography, horizon_row, project_points
from drivesim.render.camera import image_to_ground, row_ground_distance
from drivesim.sim.car import CarState


def test_point_on_the_optical_axis_projects_to_the_principal_point():
    camera = CameraConfig(width=160, height=120, pitch=0.0)
    pose = CameraPose(x=2.0, y=-1.0, z=1.5, yaw=0.3, pitch=0.0)
    ahead = np.array([2.0 + 10 * math.cos(0.3), -1.0 + 10 * math.sin(0.3), 1.5])
    uv, depth = project_points(ahead, pose, camera)
    assert uv == pytest.approx([79.5, 59.5])
    assert depth == pytest.approx(10.0)


def test_left_is_left_and_up_is_up():
    camera = CameraConfig(pitch=0.0)
    pose = CameraPose(0.0, 0.0, 1.4, 0.0, 0.0)  # looking east: north (+y) is to the left
    uv, _ = project_points(np.array([[10.0, 2.0, 1.4], [10.0, 0.0, 3.0]]), pose, camera)
    assert uv[0, 0] < (camera.width - 1) / 2  # a point to the left lands left of centre
    assert uv[1, 1] < (camera.height - 1) / 2  # a point above the lens lands above centre


def test_points_behind_the_camera_have_no_pixel():
    uv, depth = project_points(np.array([-5.0, 0.0, 0.0]), CameraPose(0, 0, 1.4, 0, 0.1), CameraConfig())
    assert depth < 0 and np.all(np.isnan(uv))


def test_ground_points_land_on_the_row_of_their_distance():
    camera = CameraConfig()
    pose = CameraPose(0.0, 0.0, camera.mount_height, 0.0, camera.pitch)
    rows = np.array([70.0, 90.0, 119.0])
    distance = row_ground_distance(camera, rows)
    uv, _ = project_points(np.column_stack([distance, np.zeros(3), np.zeros(3)]), pose, camera)
    assert uv[:, 1] == pytest.approx(rows)
    assert row_ground_distance(camera, np.array([horizon_row(camera) - 1]))[0] == np.inf


@settings(max_examples=40, deadline=None)
@given(
    x=st.floats(-500, 500), y=st.floats(-500, 500), yaw=st.floats(-math.pi, math.pi),
    pitch=st.floats(-0.2, 0.6), height=st.floats(0.3, 4.0), u=st.floats(0, 159), v=st.floats(90, 119),
)
def test_image_to_ground_inverts_the_ground_homography(x, y, yaw, pitch, height, u, v):
    camera = CameraConfig(pitch=pitch, mount_height=height)
    pose = CameraPose(x, y, height, yaw, pitch)
    ground = image_to_ground(pose, camera) @ np.array([u, v, 1.0])
    if ground[2] >= 0:  # that pixel looks above the horizon: no ground there
        return
    back = ground_homography(pose, camera) @ (ground / ground[2])
    assert back[:2] / back[2] == pytest.approx([u, v], abs=1e-6)


def test_camera_pose_mounts_forward_and_left_of_the_car():
    camera = CameraConfig(forward_offset=1.0, lateral_offset=0.5, mount_height=1.2, pitch=0.05, yaw_offset=0.1)
    pose = camera_pose(CarState(10.0, 5.0, math.pi / 2, 0.0), camera)  # car faces north: left is west
    assert (pose.x, pose.y) == pytest.approx((10.0 - 0.5, 5.0 + 1.0))
    assert (pose.z, pose.pitch, pose.yaw) == pytest.approx((1.2, 0.05, math.pi / 2 + 0.1))
    shifted = camera_pose(CarState(10.0, 5.0, math.pi / 2, 0.0), camera, extra_lateral=-1.0)
    assert shifted.x == pytest.approx(pose.x + 1.0)


def test_intrinsics_are_plain_json():
    data = camera_intrinsics(CameraConfig(width=200, height=100, fov=math.radians(90)))
    assert json.loads(json.dumps(data)) == data
    assert data["fx"] == pytest.approx(100.0) and data["fy"] == data["fx"]
    assert (data["cx"], data["cy"]) == (99.5, 49.5)
