"""Rendering is a pure function of its inputs: the same inputs give the same bytes."""

import numpy as np

from drivesim.config import RandomizationConfig, RigConfig
from drivesim.render import CameraRig, build_scene, sample_appearance
from drivesim.sim.car import CarState


def car_on(scene, s=100.0):
    pose = scene.track.pose_at(s, scene.track.lane_center_offset(0))
    return CarState(float(pose.x), float(pose.y), float(pose.yaw) + 0.05, 10.0)


def test_same_inputs_render_identical_bytes(two_lane_scene):
    rig = CameraRig(RigConfig(cameras=("left", "center", "right")))
    appearance = sample_appearance(RandomizationConfig.preset("full"), np.random.default_rng(4))
    assert appearance.noise_std > 0
    first = rig.render(two_lane_scene, car_on(two_lane_scene), appearance, np.random.default_rng(9))
    # A second scene built from the same track, and a fresh rng in the same state.
    rebuilt = build_scene(two_lane_scene.track)
    second = rig.render(rebuilt, car_on(rebuilt), appearance, np.random.default_rng(9))
    for name in first:
        assert first[name].dtype == np.uint8 and first[name].shape == (120, 160, 3)
        assert first[name].tobytes() == second[name].tobytes()


def test_scene_build_is_deterministic(one_lane_scene):
    again = build_scene(one_lane_scene.track)
    assert again.field.tobytes() == one_lane_scene.field.tobytes()
    assert again.detail.tobytes() == one_lane_scene.detail.tobytes()
    assert np.array_equal(again.billboards.position, one_lane_scene.billboards.position)


def test_sensor_noise_follows_the_rng_state(one_lane_scene):
    rig = CameraRig()
    appearance = sample_appearance(RandomizationConfig(level="full", sensor=True), np.random.default_rng(2))
    car = car_on(one_lane_scene)
    rng = np.random.default_rng(1)
    frame_a = rig.render(one_lane_scene, car, appearance, rng)["center"]
    frame_b = rig.render(one_lane_scene, car, appearance, rng)["center"]  # rng has moved on: new noise
    assert frame_a.tobytes() != frame_b.tobytes()
    noise = frame_a.astype(int) - frame_b.astype(int)
    assert np.abs(noise).max() <= 8 * appearance.noise_std + 1  # sensor-like, not arbitrary
    quiet = sample_appearance(RandomizationConfig(level="full", sensor=False), np.random.default_rng(2))
    frame_c = rig.render(one_lane_scene, car, quiet, rng)["center"]
    frame_d = rig.render(one_lane_scene, car, quiet, rng)["center"]
    assert frame_c.tobytes() == frame_d.tobytes()


def test_a_dropped_scene_is_freed_at_once_with_its_looks():
    # Scenes are tens of MB and a generation worker builds one per shard: dropping the last reference
    # must free it by reference counting, not wait for a full garbage collection (cached looks must not
    # point back at their scene).
    import gc
    import weakref

    from drivesim.config import TrackConfig
    from drivesim.track import generate_track

    scene = build_scene(generate_track(3, TrackConfig(length=400.0)))
    rig = CameraRig(RigConfig(cameras=("center", "left")))
    for seed in range(2):
        rig.render(scene, CarState(*scene.track.centreline[0], 0.0, 10.0), sample_appearance(RandomizationConfig.preset("full"), np.random.default_rng(seed)), np.random.default_rng(0))
    assert len(scene.cache) >= 2
    freed = weakref.ref(scene)
    gc.disable()
    try:
        del scene
        assert freed() is None
    finally:
        gc.enable()
