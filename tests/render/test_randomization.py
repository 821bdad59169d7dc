import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivesim.config import CameraConfig, ConfigError, RandomizationConfig, from_dict
from drivesim.render import REFERENCE, Appearance, CameraRig, sample_appearance
from drivesim.sim.car import CarState

LIGHTING = ("light", "color_temperature", "contrast", "cloud_cover", "sky_zenith", "sky_horizon")


def test_level_none_is_the_reference_look():
    for seed in range(5):
        assert sample_appearance(RandomizationConfig.preset("none"), np.random.default_rng(seed)) is REFERENCE


def test_full_is_seeded_and_varies_between_episodes():
    config = RandomizationConfig.preset("full")
    a = sample_appearance(config, np.random.default_rng(1))
    assert a == sample_appearance(config, np.random.default_rng(1))
    others = [sample_appearance(config, np.random.default_rng(seed)) for seed in range(2, 8)]
    assert all(other != a for other in others)
    for field in ("light", "asphalt", "grass", "haze_distance", "line_width"):
        assert len({getattr(o, field) for o in others}) > 3, field


def test_full_episodes_look_different(one_lane_scene):
    rig = CameraRig()
    pose = one_lane_scene.track.pose_at(50.0, 0.0)
    car = CarState(float(pose.x), float(pose.y), float(pose.yaw), 0.0)
    config = RandomizationConfig(level="full", sensor=False)
    frames = [rig.render(one_lane_scene, car, sample_appearance(config, np.random.default_rng(s)))["center"] for s in (1, 2)]
    reference = rig.render(one_lane_scene, car, REFERENCE)["center"]
    for frame in frames:
        assert np.abs(frame.astype(int) - reference.astype(int)).mean() > 5
    assert np.abs(frames[0].astype(int) - frames[1].astype(int)).mean() > 5


def test_light_level_stays_nearer_the_reference_than_full():
    for seed in range(10):
        light = sample_appearance(RandomizationConfig.preset("light"), np.random.default_rng(seed))
        full = sample_appearance(RandomizationConfig.preset("full"), np.random.default_rng(seed))
        assert abs(np.log(light.light)) <= abs(np.log(full.light)) + 1e-12
        assert abs(np.log(light.haze_distance / REFERENCE.haze_distance)) <= abs(np.log(full.haze_distance / REFERENCE.haze_distance)) + 1e-9
        assert abs(light.camera_height) <= abs(full.camera_height)


def test_switching_an_effect_off_leaves_the_others_unchanged():
    on = sample_appearance(RandomizationConfig.preset("full"), np.random.default_rng(3))
    off = sample_appearance(RandomizationConfig(level="full", lighting=False), np.random.default_rng(3))
    for field in dataclasses.fields(Appearance):
        if field.name in LIGHTING:
            assert getattr(off, field.name) == getattr(REFERENCE, field.name)
        elif field.name != "shadow_strength":  # overcast skies weaken shadows
            assert getattr(off, field.name) == getattr(on, field.name), field.name
    no_camera = sample_appearance(RandomizationConfig(level="full", camera=False, sensor=False), np.random.default_rng(3))
    assert (no_camera.camera_height, no_camera.camera_pitch, no_camera.camera_fov) == (0.0, 0.0, 0.0)
    assert (no_camera.noise_std, no_camera.blur_sigma) == (0.0, 0.0)


def test_appearance_round_trips_through_json():
    appearance = sample_appearance(RandomizationConfig.preset("full"), np.random.default_rng(8))
    data = json.loads(json.dumps(appearance.to_dict()))
    assert Appearance.from_dict(data) == appearance
    with pytest.raises(ConfigError, match="unknown"):
        Appearance.from_dict({**data, "sparkle": 1})


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), level=st.sampled_from(["light", "full"]))
def test_every_draw_stays_within_its_limits(seed, level):
    config = RandomizationConfig.preset(level)
    a = sample_appearance(config, np.random.default_rng(seed))
    assert 0 <= a.noise_std <= config.max_noise and 0 <= a.blur_sigma <= config.max_blur
    assert abs(a.camera_height) <= config.max_height_jitter
    assert abs(a.camera_pitch) <= config.max_pitch_jitter
    assert abs(a.camera_fov) <= config.max_fov_jitter
    assert 0.5 < a.light < 1.4 and 4000 < a.color_temperature < 9500 and 0.7 < a.contrast < 1.3
    assert 50 <= a.haze_distance <= 2500 and 0 <= a.marking_wear <= 1 and 0 <= a.shadow_strength < 1
    assert 0.05 <= a.line_width <= 0.3 and 0 <= a.verge_width <= 3
    for field in dataclasses.fields(Appearance):
        value = getattr(a, field.name)
        if isinstance(value, tuple):
            assert len(value) == 3 and all(0 <= c <= 255 for c in value)
    base = CameraConfig()
    camera = a.apply_to_camera(base)
    # The draw's jitter moves the mount (kept inside CameraConfig's limits); nothing else changes.
    assert camera.mount_height == pytest.approx(min(5.0, max(0.2, base.mount_height + a.camera_height)))
    assert camera.pitch == pytest.approx(min(0.8, max(-0.3, base.pitch + a.camera_pitch)))
    assert camera.fov == pytest.approx(min(2.8, max(0.2, base.fov + a.camera_fov)))
    assert dataclasses.replace(camera, mount_height=base.mount_height, pitch=base.pitch, fov=base.fov) == base


def test_config_validation():
    with pytest.raises(ConfigError, match="level"):
        RandomizationConfig(level="extreme")
    with pytest.raises(ConfigError, match="max_noise"):
        RandomizationConfig(max_noise=20.0)
    with pytest.raises(ConfigError, match="max_height_jitter"):
        RandomizationConfig(max_height_jitter=-0.1)
    with pytest.raises(ConfigError, match="max_blur"):
        RandomizationConfig(max_blur=5.0)
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(RandomizationConfig, {"level": "full", "sparkle": True})
    with pytest.raises(ConfigError, match="expected true or false"):
        from_dict(RandomizationConfig, {"shadows": "yes"})
    assert from_dict(RandomizationConfig, {"level": "light", "haze": False}) == RandomizationConfig(level="light", haze=False)
    assert RandomizationConfig.preset("full").strength == 1.0
