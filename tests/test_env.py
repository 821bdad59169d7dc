"""The Gymnasium environment: its spaces and API as Gymnasium checks them, and episodes as its docstring specifies."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import drivesim.env as drive_env
from drivesim.config import ExpertConfig
from drivesim.drivers.expert import ExpertDriver
from drivesim.env import ENV_ID, STATE_FIELDS, DrivingEnv, EnvError
from drivesim.errors import DrivesimError
from drivesim.render.frame_source import RigView


def episode(env, seed: int, steps: int, policy=None) -> list[tuple]:
    """(observation bytes, reward, terminated, truncated, info without arrays) of each step after reset(seed)."""
    obs, info = env.reset(seed=seed)
    out = [(obs.tobytes(), 0.0, False, False, info["progress"])]
    for _ in range(steps):
        action = info["expert_action"] if policy is None else policy
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs.tobytes(), reward, terminated, truncated, info["progress"]))
        if terminated or truncated:
            break
    return out


@pytest.mark.parametrize("obs_type", ["pixels", "state"])
def test_gymnasium_finds_no_fault_with_it(obs_type):
    env = gymnasium.make(ENV_ID, tracks="tracks/val", obs_type=obs_type, render_mode="rgb_array", max_steps=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker's warnings (unbounded spaces, wrong dtypes) count as faults
        check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    assert obs.shape == ((120, 160, 3) if obs_type == "pixels" else (len(STATE_FIELDS),))
    frame = env.render()
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8 and frame.std() > 10  # a picture, not a blank
    env.close()


def test_gymnasium_imports_the_module_itself_when_the_id_names_it():
    script = "import gymnasium; env = gymnasium.make('drivesim.env:drivesim/Drive-v0', obs_type='state'); print(env.reset(seed=0)[0].shape)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "(7,)\n", result.stderr


def test_the_same_seed_gives_the_same_episodes_and_state_drives_as_pixels_do():
    pixels = DrivingEnv(tracks="tracks/val", max_steps=40)
    again = DrivingEnv(tracks="tracks/val", max_steps=40)
    state = DrivingEnv(tracks="tracks/val", max_steps=40, obs_type="state")
    first = episode(pixels, 3, 60) + episode(pixels, 4, 10)
    assert first == episode(again, 3, 60) + episode(again, 4, 10)
    assert episode(pixels, 5, 20) != episode(again, 6, 20)
    # The look is drawn whether or not a frame is rendered, so everything but the observation is the same.
    assert [step[1:] for step in episode(state, 3, 60)] == [step[1:] for step in first[:41]]


def test_the_expert_label_drives_a_lap_and_the_reward_is_the_progress():
    env = DrivingEnv(obs_type="state", max_steps=10_000, laps=1)  # fresh procedural tracks
    steps = episode(env, 11, 10_000)
    *_, (_, _, terminated, truncated, progress) = steps
    assert truncated and not terminated  # the lap ended it, not a crash and not max_steps
    assert env.world.track.length <= progress < env.world.track.length + 1.0
    assert len(steps) - 1 < 10_000
    assert sum(step[1] for step in steps) == pytest.approx(progress - steps[0][4])


def test_the_label_is_the_experts_command_for_the_state_observed_with_it():
    # As labels/steering in a recording: what the expert would do here, not what was done.
    env, expert = DrivingEnv(obs_type="state"), ExpertDriver(ExpertConfig())
    _, info = env.reset(seed=4)
    for action in ([0.0, 0.5], [0.3, 0.0], [-0.2, 1.0], [0.0, -1.0]):
        label = expert.act(env.world)
        assert info["expert_action"].tolist() == np.float32([label.steering, label.throttle]).tolist()
        _, _, _, _, info = env.step(action)
    assert abs(info["expert_action"][0]) > 0.01  # the car was pushed off its line: the label steers back


def test_a_bad_driver_crashes_and_pays_for_it():
    env = DrivingEnv(obs_type="state", max_steps=500, crash_penalty=50.0)
    steps = episode(env, 2, 500, policy=[1.0, 1.0])  # full left, full throttle
    *_, (_, reward, terminated, truncated, _) = steps
    assert terminated and not truncated and len(steps) - 1 < 500
    assert reward < -40.0  # the penalty, less the few metres of the last step
    assert all(step[1] > -40.0 for step in steps[:-1])


def test_max_steps_truncates_and_the_car_starts_at_cruising_speed():
    env = DrivingEnv(obs_type="state", max_steps=7)
    obs, info = env.reset(seed=1)
    assert info["speed"] > 5.0 and obs[2] == np.float32(info["speed"])
    assert abs(info["lateral_offset"]) <= 0.5 + 1e-6
    steps = episode(env, 1, 100)
    assert len(steps) - 1 == 7 and steps[-1][3] and not steps[-1][2]


def test_a_track_pool_keeps_a_bounded_number_of_scenes(monkeypatch):
    monkeypatch.setattr(drive_env, "SCENES_KEPT", 2)
    env = DrivingEnv(tracks="tracks/val", max_steps=5)
    drawn = set()
    for seed in range(12):
        env.reset(seed=seed)
        drawn.add(env.world.track.name)
        assert len(env._scenes) <= 2
    assert len(drawn) >= 3  # it did have more tracks to keep
    state = DrivingEnv(tracks="tracks/val", obs_type="state")
    for seed in range(5):
        state.reset(seed=seed)
        state.step([0.0, 0.0])
    assert not state._scenes and state.view is None  # nothing rendered, nothing built


def test_bad_arguments_and_actions_are_clear_errors():
    for kwargs, message in (({"randomize": "heavy"}, "randomize must be none, light or full"),
                            ({"obs_type": "rgb"}, "obs_type must be pixels or state"),
                            ({"render_mode": "human"}, "render_mode must be None or rgb_array"),
                            ({"max_steps": 0}, "max_steps must be at least 1"),
                            ({"max_steps": 1.5}, "max_steps must be a whole number"),
                            ({"width": 64.5}, "width must be a whole number"),
                            ({"height": 15}, r"camera width and height must be in \[16, 4096\] px"),
                            ({"laps": float("nan")}, "laps must be a finite number above 0"),  # once: no lap limit at all
                            ({"tracks": "no/such/folder"}, "no/such/folder")):
        with pytest.raises(DrivesimError, match=message):
            DrivingEnv(**kwargs)
    env = DrivingEnv(obs_type="state")
    with pytest.raises(EnvError, match="reset"):
        env.step([0.0, 0.0])
    env.reset(seed=0)
    for action, message in (([float("nan"), 0.0], r"finite, got \[nan, 0.0\]"),
                            ([0.1, 0.2, 0.3], r"shape \(3,\)"),
                            ([[0.1, 0.2]], r"shape \(1, 2\)"),  # a batch of one: a vector env's action, given to one env
                            (["0.1", "0.2"], "two numbers"), (0.5, "two numbers")):
        with pytest.raises(EnvError, match=message):
            env.step(action)
    env.step(np.array([0.1, 0.2], np.float64))  # any float dtype, and lists of numbers, are actions
    with pytest.warns(UserWarning, match="render_mode"):
        assert DrivingEnv(obs_type="state").render() is None  # no render_mode: nothing to render


def test_after_a_crash_step_asks_for_reset():
    env = DrivingEnv(obs_type="state")
    steps = episode(env, 2, 500, policy=[1.0, 1.0])
    assert steps[-1][2]
    with pytest.raises(EnvError, match="ended with a crash; call reset"):
        env.step([0.0, 0.0])
    env.reset()
    env.step([0.0, 0.0])


def test_gymnasium_make_limits_episodes_as_gymnasium_does():
    env = gymnasium.make(ENV_ID, obs_type="state")
    assert env.spec.max_episode_steps == drive_env.MAX_EPISODE_STEPS == 1000
    short = gymnasium.make(ENV_ID, obs_type="state", max_episode_steps=5)
    steps = episode(short, 0, 100)
    assert len(steps) - 1 == 5 and steps[-1][3]
    endless = DrivingEnv(obs_type="state")  # made directly: no limit but its own
    assert len(episode(endless, 0, 1200)) - 1 == 1200


def test_a_frame_depends_on_the_episode_and_step_not_on_frames_rendered_before():
    pixels = DrivingEnv(tracks="tracks/val", randomize="full")
    state = DrivingEnv(tracks="tracks/val", randomize="full", obs_type="state", render_mode="rgb_array")
    observed, _ = pixels.reset(seed=7)
    state.reset(seed=7)
    for step in range(6):
        if step in (2, 5):  # rendered only now: the sensor noise of these frames must not depend on it
            assert np.array_equal(state.render(), observed)
        observed, *_ = pixels.step([0.0, 0.3])
        state.step([0.0, 0.3])


def test_an_environment_pickles_after_reset_and_renders_the_same_frames():
    import pickle

    env = DrivingEnv(tracks="tracks/val", randomize="full", render_mode="rgb_array")
    env.reset(seed=3)
    env.step([0.0, 0.3])
    copy = pickle.loads(pickle.dumps(env))
    assert np.array_equal(copy.render(), env.render())
    assert np.array_equal(copy.step([0.1, 0.3])[0], env.step([0.1, 0.3])[0])


def test_a_frames_noise_is_not_drawn_from_the_numbers_that_drew_the_look(monkeypatch):
    # numpy pads seeds with zeros: the first frame seeded [look_seed, 0] would replay the look's own draws.
    noise_streams = []
    render = RigView.render
    monkeypatch.setattr(RigView, "render", lambda view, world, noise: noise_streams.append(noise.bit_generator.state) or render(view, world, noise))
    env = DrivingEnv(tracks="tracks/val", randomize="full")
    env.reset(seed=1)
    env.step([0.0, 0.0])
    look_stream = np.random.default_rng(env._look_seed).bit_generator.state  # what sample_appearance drew from
    assert len(noise_streams) == 2 and look_stream not in noise_streams and noise_streams[0] != noise_streams[1]


def test_a_folder_named_random_is_a_folder_when_given_as_a_path(tmp_path, repo_root, monkeypatch):
    shutil.copytree(repo_root / "tracks" / "val", tmp_path / "random")
    monkeypatch.chdir(tmp_path)
    assert len(DrivingEnv(tracks=Path("random"), obs_type="state").pool) == 5
    assert len(DrivingEnv(tracks="./random", obs_type="state").pool) == 5
    assert DrivingEnv(tracks="random", obs_type="state").pool is None


def test_fresh_tracks_are_not_kept_alive():
    # The expert's speed profiles hold their tracks: 256 of them were about 100 MB per environment.
    env = DrivingEnv(obs_type="state")
    for seed in range(4):
        env.reset(seed=seed)
    assert len(env.expert._profiles) == 1
    assert len(DrivingEnv(tracks="tracks/val", obs_type="state").expert._profiles) == 0


def test_without_gymnasium_the_import_says_what_to_install():
    script = "import sys; sys.modules['gymnasium'] = None\nimport drivesim.env"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "ModuleNotFoundError: drivesim.env needs gymnasium: pip install gymnasium (or drivesim[gym])"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vector_environments_step_as_single_ones_do(mode):
    # async runs each environment in a subprocess: the environment and its arguments must pickle.
    envs = gymnasium.make_vec(ENV_ID, num_envs=2, vectorization_mode=mode, tracks="tracks/val", max_episode_steps=8)
    single = [gymnasium.make(ENV_ID, tracks="tracks/val", max_episode_steps=8) for _ in range(2)]
    try:
        obs, info = envs.reset(seed=5)
        assert obs.shape == (2, 120, 160, 3) and info["expert_action"].shape == (2, 2)
        for i, env in enumerate(single):  # make_vec seeds environment i with seed + i
            assert np.array_equal(env.reset(seed=5 + i)[0], obs[i])
        for _ in range(3):
            obs, *_ = envs.step(info["expert_action"])
            expected = [env.step(info["expert_action"][i])[0] for i, env in enumerate(single)]
            assert np.array_equal(obs, np.stack(expected))
    finally:
        envs.close()
