"""The real window, headless, driven by posted key events."""

from __future__ import annotations

import numpy as np
import pygame
import pytest
from window_helpers import close_window, frames, leftovers, press, read_all, release, tap

from drivesim.app import Mode
from drivesim.drivers import ExpertDriver
from drivesim.drivers.base import DriverKind
from drivesim.metrics import Trace, closed_loop_metrics
from drivesim.record import Event, RecordingError


def test_autopilot_key_drives_and_progresses(make_app):
    app = make_app()
    session = app.session
    frames(app, 20)
    assert session.mode == Mode.HUMAN and session.world.car.speed == 0.0  # nobody touched the keys: the car stands
    assert abs(session.world.road.progress) < 1e-6
    tap(app, pygame.K_p)
    assert session.mode == Mode.AUTOPILOT
    frames(app, 200)  # 10 s of simulated time
    road = session.world.road
    assert road.progress > 80.0
    assert abs(road.lateral_offset) < 0.5 and not road.off_road
    assert session.last.kind == DriverKind.EXPERT
    assert session.trail.points[-1][2] == DriverKind.EXPERT and len(session.trail.points) == 222  # start + every step
    tap(app, pygame.K_p)
    assert session.mode == Mode.HUMAN
    stats = close_window(app)
    assert stats.steps == 0 and not app.running  # the close button ended the run at once


def test_keys_steer_smoothly_throttle_and_brake(make_app):
    app = make_app()
    session = app.session
    press(pygame.K_UP)
    frames(app, 40)
    assert session.world.car.speed > 5.0 and session.last.applied.throttle == 1.0
    press(pygame.K_a)  # WASD works too: steer left
    app.frame()
    first = session.last.applied.steering
    frames(app, 9)
    speed = session.world.car.speed  # the speed the next step's steering is chosen at
    app.frame()
    held = session.last.applied.steering
    assert 0.0 < first < held  # rate-limited towards the target, not a jump
    assert held == pytest.approx(session.human.key_steering_limit(speed, session.world.car_config))  # less than full lock at speed
    release(pygame.K_a)
    frames(app, 15)
    assert abs(session.last.applied.steering) < 0.05  # back to centre
    release(pygame.K_UP)
    press(pygame.K_DOWN)
    frames(app, 40)
    assert session.world.car.speed == 0.0 and session.last.applied.throttle == -1.0
    # Two keys for one job: letting go of one while the other is held keeps steering.
    press(pygame.K_LEFT)
    press(pygame.K_a)
    release(pygame.K_a)
    frames(app, 5)
    assert session.input.left and session.last.applied.steering > 0.3
    release(pygame.K_LEFT)
    app.frame()
    assert not session.input.left
    close_window(app)


def test_recording_writes_a_valid_shard_with_human_and_expert_frames(make_app, tmp_path):
    folder = tmp_path / "rec"
    app = make_app(record_root=str(folder.parent), randomization="light")
    session = app.session
    tap(app, pygame.K_r)  # R: recording into record_root/play-<time>
    assert session.recording
    press(pygame.K_UP)
    # Before each frame, an independent expert labels the state that the frame records.
    expected = []
    for i in range(30):
        if i in (10, 20):
            (press if i == 10 else release)(pygame.K_LEFT)  # a swerve to the left
        expected.append(ExpertDriver().act(session.world).steering)
        app.frame()
    release(pygame.K_UP)
    tap(app, pygame.K_p)  # the autopilot drives on, still recording
    frames(app, 20)
    tap(app, pygame.K_r)  # recording off: the shard is completed and listed
    recorded = session.record_folder
    assert recorded is not None and recorded.parent == folder.parent
    frames(app, 10)  # not recorded
    close_window(app)

    data = read_all(recorded)
    n = len(data["meta/driver"])
    assert n == 1 + 30 + 1 + 20  # the R frame, 30 with keys held, the P frame, 20 more
    driver = data["meta/driver"]
    # Keys are handled before the frame's step: the R frame is the human's, the P frame the autopilot's.
    assert set(driver[:31].tolist()) == {DriverKind.HUMAN} and set(driver[31:].tolist()) == {DriverKind.EXPERT}
    np.testing.assert_allclose(data["labels/steering"][1:31], expected, atol=1e-6)  # human frames carry the expert's label
    assert np.all(data["controls/steering"][11:21] > 0) and np.all(data["controls/throttle"][1:31] == 1)  # what the human did
    assert np.all(np.abs(data["controls/steering"][11:21] - data["labels/steering"][11:21]) > 0.01)  # not what the expert would do
    np.testing.assert_allclose(data["controls/steering"][31:], data["labels/steering"][31:], atol=1e-6)
    assert data["images/center"].shape == (n, 120, 160, 3)  # the rig's standard frames, not the 320x240 window
    assert len(set(data["meta/episode"].tolist())) == 1
    assert np.all(np.diff(data["meta/step"]) == 1)
    assert leftovers(recorded) == []


def test_taking_the_wheel_from_the_network_is_an_intervention(make_app, checkpoint, tmp_path):
    folder = tmp_path / "takeover"
    app = make_app(model=str(checkpoint), record=str(folder))
    session = app.session
    assert session.mode == Mode.NETWORK and session.recording  # a model drives first; --record records at once
    frames(app, 15)
    press(pygame.K_RIGHT)  # the human grabs the wheel
    frames(app, 12)
    release(pygame.K_RIGHT)
    frames(app, 3)
    assert session.mode == Mode.HUMAN and session.intervening
    tap(app, pygame.K_n)  # the wheel goes back to the network
    assert session.mode == Mode.NETWORK and not session.intervening
    frames(app, 10)
    close_window(app)

    data = read_all(folder)
    driver, events = data["meta/driver"], data["meta/events"]
    human = np.flatnonzero(driver == DriverKind.HUMAN)
    assert len(human) == 15 and np.all(np.diff(human) == 1)  # one contiguous takeover
    assert set(driver[: human[0]].tolist()) == {DriverKind.POLICY} and set(driver[human[-1] + 1 :].tolist()) == {DriverKind.POLICY}
    # As in `drivesim eval`: the first frame of the other driver carries INTERVENTION_START, all of its frames RECOVERING.
    starts = np.flatnonzero(events & Event.INTERVENTION_START)
    assert starts.tolist() == [human[0]]
    assert np.all(events[human] & Event.RECOVERING)
    assert not np.any(events[driver == DriverKind.POLICY] & Event.RECOVERING)
    assert np.all(data["controls/steering"][human[:12]] < 0)  # steering right
    trace = Trace(driver=driver, events=events, time=np.arange(len(driver)) * 0.05, progress=data["state/progress"],
                  lateral_offset=np.zeros(len(driver)), steering=data["controls/steering"], speed=data["state/speed"],
                  x=data["state/x"], y=data["state/y"])
    assert closed_loop_metrics(trace, 0.05, DriverKind.POLICY)["interventions"] == 1
    assert session.episode.result().interventions == 1
    assert session.takeovers == 1


def test_moving_the_stick_takes_the_wheel_from_the_network(make_app, checkpoint):
    app = make_app(model=str(checkpoint))
    session = app.session
    frames(app, 3)
    app.gamepads.read = lambda: (0.05, 0.0)  # a resting stick does not take over
    frames(app, 3)
    assert session.mode == Mode.NETWORK
    app.gamepads.read = lambda: (0.6, 0.0)
    frames(app, 3)
    assert session.mode == Mode.HUMAN and session.intervening
    assert session.last.applied.steering > 0.5 and session.last.kind == DriverKind.HUMAN
    close_window(app)


def test_quitting_mid_recording_completes_the_shard(make_app, tmp_path):
    folder = tmp_path / "quit"
    app = make_app(record=str(folder), driver=Mode.AUTOPILOT)
    frames(app, 25)
    assert leftovers(folder) == ["shard-00000.h5.tmp"]  # being written
    press(pygame.K_ESCAPE)
    app.run()
    assert leftovers(folder) == []
    data = read_all(folder)
    assert len(data["meta/driver"]) == 25
    assert data["meta/events"][0] & Event.EPISODE_RESET


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_interrupt_or_a_crash_leaves_no_half_written_shard(make_app, tmp_path, error):
    folder = tmp_path / "crash"
    app = make_app(record=str(folder), driver=Mode.AUTOPILOT)
    session = app.session
    step = session.step

    def failing_step():
        if session.steps == 40:
            raise error("boom")
        step()

    session.step = failing_step
    with pytest.raises(error):
        app.run()
    assert leftovers(folder) == []
    assert len(read_all(folder)["meta/driver"]) == 40  # everything recorded before the failure, as a complete shard


def test_a_shard_that_cannot_be_completed_is_deleted(make_app, tmp_path):
    folder = tmp_path / "bad"
    app = make_app(record=str(folder), driver=Mode.AUTOPILOT)
    frames(app, 10)
    tap(app, pygame.K_r)  # a first good stretch of 10 frames ends (keys act before the frame's step)
    tap(app, pygame.K_r)
    frames(app, 5)
    add = app.session.recorder.add_frame

    def corrupt(record):  # a frame the schema refuses: the writer fails when it flushes
        add({**record, "state/speed": float("nan")})

    app.session.recorder.add_frame = corrupt
    with pytest.raises(RecordingError, match="not finite"):  # the run ends with the writer's own error
        app.run()
    assert leftovers(folder) == [] and sorted(p.name for p in folder.glob("shard-*")) == ["shard-00000.h5"]
    assert len(read_all(folder)["meta/driver"]) == 10

    # When the only stretch fails (a full disk), the folders the session made for it go too.
    app = make_app(record=str(tmp_path / "new" / "bad"), driver=Mode.AUTOPILOT)
    add = app.session.recorder.add_frame
    app.session.recorder.add_frame = corrupt
    frames(app, 5)
    with pytest.raises(RecordingError, match="not finite"):
        app.run()
    assert not (tmp_path / "new").exists()


def test_reset_new_track_look_and_camera_keys(make_app, tmp_path):
    app = make_app(record=str(tmp_path / "keys"), driver=Mode.AUTOPILOT)
    session = app.session
    frames(app, 40)
    assert session.world.road.progress > 5
    tap(app, pygame.K_BACKSPACE)
    assert session.world.road.progress < 1.0
    first_track = session.track
    tap(app, pygame.K_t)
    assert session.track is not first_track and session.mode == Mode.AUTOPILOT
    tap(app, pygame.K_l)
    assert session.level == "light"
    tap(app, pygame.K_c)
    assert app.state.camera == "left"
    before = session.steps
    tap(app, pygame.K_SPACE)
    frames(app, 5)
    assert session.steps == before and app.state.paused
    tap(app, pygame.K_SPACE)
    tap(app, pygame.K_h)
    assert app.state.help
    frames(app, 3)
    close_window(app)
    data = read_all(tmp_path / "keys")
    # Every reset, new track and new look starts a new episode; each is a whole episode in its own shard.
    assert len(set(data["meta/episode"].tolist())) == 4
    assert open_tracks(tmp_path / "keys") == [first_track.name, first_track.name, session.track.name, session.track.name]


def open_tracks(folder):
    from drivesim.record import open_recording

    recording = open_recording(folder)
    return [t["track"] for i in range(len(recording.shards)) for t in recording.attrs(i)["tracks"]]


def test_long_stretches_are_cut_into_whole_episodes_and_the_folder_is_valid_after_each(make_app, tmp_path):
    folder = tmp_path / "long"
    app = make_app(record=str(folder), driver=Mode.AUTOPILOT, segment_frames=15)
    frames(app, 31)
    app.session.recorder.wait()  # full stretches are completed in the background
    assert read_all(folder)["meta/episode"].tolist() == [0] * 15 + [1] * 15  # readable while the window is open
    tap(app, pygame.K_r)  # off: the third stretch (1 frame) is completed
    press(pygame.K_r)  # on, and off again before any frame: nothing is written
    press(pygame.K_r)
    frames(app, 2)
    close_window(app)
    data = read_all(folder)
    assert data["meta/episode"].tolist() == [0] * 15 + [1] * 15 + [2]
    assert np.all(np.diff(data["meta/step"]) == 1)  # one drive, cut into episodes
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "shard-00000.h5", "shard-00001.h5", "shard-00002.h5"]


def test_the_recording_clock_counts_every_recorded_frame():
    from drivesim.app.hud import recording_clock

    assert recording_clock(26, 0.05) == "00:01.3"
    assert recording_clock(1199, 0.05) == "01:00.0"  # rounds up to the minute, never "00:60.0"
    assert recording_clock(2399, 0.05) == "02:00.0"
    assert recording_clock(36_000, 0.05) == "30:00.0"


def test_a_screenshot_that_cannot_be_saved_is_a_notice_not_the_end(make_app, tmp_path, monkeypatch):
    app = make_app()
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # F12 saves into the working folder, which no longer exists
    tap(app, pygame.K_F12)
    assert app.running and app.session.message.startswith("screenshot not saved")
    close_window(app)
