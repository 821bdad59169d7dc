import math
from types import SimpleNamespace

import numpy as np
import pytest

from drivesim.config import EpisodeConfig, ExpertConfig, NoiseConfig
from drivesim.drivers import ExpertDriver, NoisyDriver, speed_profile
from drivesim.drivers.base import DriverKind
from drivesim.loop import run_episode
from drivesim.sim import Controls, World
from drivesim.track import load_tracks


class ListRecorder:
    def __init__(self):
        self.records = []

    def add_frame(self, record):
        self.records.append(record)


@pytest.fixture(scope="module")
def sample_tracks(repo_root):
    tracks = load_tracks(repo_root / "tracks" / "train")
    # A short, a wide two-lane and the curviest track: quick, and the hard cases.
    short = min(tracks, key=lambda t: t.length)
    two_lane = next(t for t in tracks if t.lanes == 2)
    curviest = max(tracks, key=lambda t: np.max(np.abs(t.curvature)))
    return [short, two_lane, curviest]


def test_expert_completes_two_clean_laps(sample_tracks):
    for track in sample_tracks:
        expert = ExpertDriver()
        world = World(track)
        result = run_episode(world, expert, expert, EpisodeConfig(laps=2, max_steps=50_000))
        assert result.laps == 2, track.name
        assert result.off_road_steps == 0 and not result.crashed, track.name
        assert result.mean_speed > 12.0, track.name  # not timid: above 43 km/h on average


def test_expert_keeps_right_lane_on_two_lane_track(sample_tracks):
    track = sample_tracks[1]
    world = World(track)
    expert = ExpertDriver()
    recorder = ListRecorder()
    run_episode(world, expert, expert, EpisodeConfig(distance=300), recorder=recorder)
    offsets = np.array([r["state/lateral_offset"] for r in recorder.records])
    assert np.max(np.abs(offsets)) < 0.5
    assert world.road.road_offset < 0  # right of the centreline


def test_speed_profile_slows_for_bends(sample_tracks):
    track = sample_tracks[2]
    profile = speed_profile(track, ExpertConfig(), 20.0)
    tight = np.argmax(np.abs(track.curvature))
    assert profile[tight] <= np.sqrt(ExpertConfig().max_lateral_accel / abs(track.curvature[tight])) + 1e-9
    assert profile.max() == 20.0


def test_noise_changes_controls_not_labels(sample_tracks):
    track = sample_tracks[0]
    results = []
    for seed in (1, 1, 2):
        expert = ExpertDriver()
        driver = NoisyDriver(expert, NoiseConfig(steering_std=0.2), np.random.default_rng(seed))
        recorder = ListRecorder()
        run_episode(World(track), driver, expert, EpisodeConfig(max_steps=300), recorder=recorder)
        applied = np.array([r["controls/steering"] for r in recorder.records])
        labels = np.array([r["labels/steering"] for r in recorder.records])
        results.append((applied, labels))
    applied, labels = results[0]
    assert np.std(applied - labels) > 0.05  # the executed controls deviate...
    np.testing.assert_array_equal(results[0][0], results[1][0])  # ...reproducibly per seed
    assert not np.array_equal(results[0][0], results[2][0])


class HoldsStill:
    """A driver that never steers: what NoisyDriver adds is then the noise alone."""

    kind = DriverKind.EXPERT

    def reset(self, world):
        pass

    def act(self, world, frames):
        return Controls(0.0, 0.0)


@pytest.mark.parametrize("correlation_time", [0.5, 0.03])  # 0.03 s is shorter than a step
def test_dart_noise_has_the_configured_spread_and_correlation(correlation_time):
    world = SimpleNamespace(dt=0.05)
    driver = NoisyDriver(HoldsStill(), NoiseConfig(steering_std=0.1, correlation_time=correlation_time), np.random.default_rng(0))
    steering = np.array([driver.act(world, {}).steering for _ in range(40000)])
    assert np.std(steering) == pytest.approx(0.1, rel=0.05)
    assert np.corrcoef(steering[:-1], steering[1:])[0, 1] == pytest.approx(math.exp(-0.05 / correlation_time), abs=0.03)


def test_noisy_expert_label_steers_back_to_the_lane(sample_tracks):
    track = sample_tracks[0]
    expert = ExpertDriver()
    driver = NoisyDriver(expert, NoiseConfig(steering_std=0.3), np.random.default_rng(0))
    recorder = ListRecorder()
    run_episode(World(track), driver, expert, EpisodeConfig(max_steps=600), recorder=recorder)
    offsets = np.array([r["state/lateral_offset"] for r in recorder.records])
    labels = np.array([r["labels/steering"] for r in recorder.records])
    curvature = np.array([r["state/curvature"] for r in recorder.records])
    assert np.max(np.abs(offsets)) > 0.3  # the noise really moved the car
    # Left of the lane (positive offset) -> the label turns right relative to the bend.
    residual = labels - curvature * track_wheel_factor()
    assert np.corrcoef(offsets, residual)[0, 1] < -0.5


def track_wheel_factor() -> float:
    from drivesim.config import CarConfig

    car = CarConfig()
    # Normalized steering that holds a bend of unit curvature: atan(L * k) / max_steer ~ L / max_steer.
    return car.wheelbase / car.max_steer


def test_one_expert_driving_many_worlds_keeps_a_profile_per_track(sample_tracks, monkeypatch):
    # Lock-step evaluation hands one expert the worlds of every track in turn: its answers must match
    # a dedicated expert's, and it must not rebuild a speed profile each time the track changes.
    import drivesim.drivers.expert as expert_module

    built = []
    real = expert_module.speed_profile
    monkeypatch.setattr(expert_module, "speed_profile", lambda track, *a: built.append(track.name) or real(track, *a))
    worlds = [World(track) for track in sample_tracks]
    shared = ExpertDriver()
    dedicated = [ExpertDriver() for _ in worlds]
    for _ in range(3):
        for world, own in zip(worlds, dedicated, strict=True):
            assert shared.act(world) == own.act(world)
            world.step(own.act(world))
    assert sorted(built) == sorted([t.name for t in sample_tracks] * 2)  # once for `shared`, once per dedicated


def test_asked_twice_before_the_world_moves_the_expert_answers_the_same_without_recomputing():
    # The loop's label and a noisy driver wrapping the same expert ask at the same state.
    import numpy as np

    from drivesim.config import NoiseConfig
    from drivesim.drivers import ExpertDriver, NoisyDriver
    from drivesim.sim import World
    from drivesim.track import load_tracks

    world = World(load_tracks("tracks/val")[0])
    world.reset(s=20.0, lateral_offset=0.5, speed=8.0)
    expert = ExpertDriver()
    expert.reset(world)
    label = expert.act(world)
    assert expert.act(world) is label
    noisy = NoisyDriver(expert, NoiseConfig(steering_std=0.1), np.random.default_rng(0))
    applied = noisy.act(world, {})
    assert abs(applied.steering - label.steering) < 0.5
    world.step(applied)
    moved = expert.act(world)
    assert moved is not label and moved == ExpertDriver().act(world)  # a new state is a new answer, as a fresh expert gives
