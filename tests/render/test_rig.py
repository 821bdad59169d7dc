import json

import numpy as np
import pytest

from drivesim.config import CameraConfig, RigConfig
from drivesim.render import REFERENCE, CameraRig
from drivesim.render.camera import row_ground_distance
from drivesim.sim.car import CarState


def road_centre_column(frame: np.ndarray, row: int) -> float:
    """Mean column of the neutral-grey (asphalt) pixels in `row`."""
    pixels = frame[row].astype(int)
    grey = (pixels.max(axis=1) - pixels.min(axis=1)) < 16
    columns = np.flatnonzero(grey)
    assert len(columns) > 10
    return float(columns.mean())


def test_side_cameras_see_the_road_shifted_the_other_way(one_lane_scene, without_billboards, straightest_s):
    scene = without_billboards(one_lane_scene)
    s = straightest_s(scene)
    pose = scene.track.pose_at(s, 0.0)
    rig = CameraRig(RigConfig(cameras=("left", "center", "right"), side_offset=0.8, camera=CameraConfig(width=320, height=240)))
    frames = rig.render(scene, CarState(float(pose.x), float(pose.y), float(pose.yaw), 0.0), REFERENCE)
    rows = np.arange(240)
    row = int(rows[np.argmin(np.abs(row_ground_distance(rig.config.camera, rows) - 10.0))])  # ground 10 m ahead
    left, centre, right = (road_centre_column(frames[name], row) for name in ("left", "center", "right"))
    # A camera further left sees the road further to the right in its image, and by a few pixels.
    assert left > centre + 5 and centre > right + 5
    assert left - centre == pytest.approx(centre - right, rel=0.3)


def test_rig_renders_each_named_camera(one_lane_scene):
    rig = CameraRig(RigConfig(cameras=("center", "right"), camera=CameraConfig(width=64, height=48)))
    assert rig.lateral_shift("right") == -rig.config.side_offset
    pose = one_lane_scene.track.pose_at(100.0, 0.0)
    frames = rig.render(one_lane_scene, CarState(float(pose.x), float(pose.y), float(pose.yaw), 0.0), REFERENCE)
    assert list(frames) == ["center", "right"]
    assert all(frame.shape == (48, 64, 3) and frame.dtype == np.uint8 for frame in frames.values())
    assert not np.array_equal(frames["center"], frames["right"])  # 0.8 m apart, they see different pictures


def test_intrinsics_describe_each_camera_in_plain_json():
    rig = CameraRig(RigConfig(cameras=("left", "center", "right"), side_offset=0.7))
    data = rig.intrinsics()
    assert json.loads(json.dumps(data)) == data
    assert [data[name]["mount"]["left"] for name in ("left", "center", "right")] == pytest.approx([0.7, 0.0, -0.7])
    for entry in data.values():
        assert {"fx", "fy", "cx", "cy", "width", "height", "fov", "mount"} <= set(entry)
        assert (entry["width"], entry["height"]) == (160, 120)


def test_intrinsics_include_the_episode_camera_jitter():
    rig = CameraRig()
    jittered = REFERENCE.__class__(camera_height=0.1, camera_pitch=-0.02, camera_fov=0.05)
    data = rig.intrinsics(jittered)["center"]
    camera = rig.config.camera
    assert data["mount"]["height"] == pytest.approx(camera.mount_height + 0.1)
    assert data["mount"]["pitch"] == pytest.approx(camera.pitch - 0.02)
    assert data["fov"] == pytest.approx(camera.fov + 0.05)


def test_views_sharing_a_scene_render_what_views_with_their_own_scenes_do(one_lane_scene, two_lane_scene):
    # An evaluation drives a track's looks side by side on one scene; each view keeps its own look.
    from drivesim.config import RandomizationConfig
    from drivesim.render.frame_source import RigView
    from drivesim.render.scene import build_scene
    from drivesim.sim import Controls, World

    track, full = one_lane_scene.track, RandomizationConfig.preset("full")
    shared = build_scene(track)
    views = [RigView(track, RigConfig(), full, shared) for _ in range(3)] + [RigView(track, RigConfig(), full) for _ in range(3)]
    for k, view in enumerate(views):
        view.start_episode(np.random.default_rng([7, k % 3]))
    world = World(track)
    world.reset(s=30.0, speed=10.0)
    looks = []
    for _ in range(4):  # the shared views take turns, as in lock-step
        frames = [view.render(world)["center"] for view in views]
        for k in range(3):
            np.testing.assert_array_equal(frames[k], frames[k + 3])
        looks.append([view._look for view in views[:3]])
        world.step(Controls(0.1, 0.2))
    assert all(step == looks[0] for step in looks)  # each view's look is built once, not each time another view rendered
    assert not np.array_equal(frames[0], frames[1])  # three looks, not one
    with pytest.raises(ValueError, match="of its track"):
        RigView(two_lane_scene.track, RigConfig(), full, shared)
