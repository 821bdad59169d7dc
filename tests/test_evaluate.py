import copy
import dataclasses
import json
import subprocess
import sys
from dataclasses import replace

import cv2
import h5py
import numpy as np
import pytest

from drivesim.config import EpisodeConfig, InterventionConfig, RandomizationConfig
from drivesim.drivers import ExpertDriver
from drivesim.drivers.base import DriverKind
from drivesim.evaluate import EvalConfig, evaluate
from drivesim.loop import run_batched, run_episode
from drivesim.metrics import Trace, closed_loop_metrics, combine, count_rising, lap_flags
from drivesim.record import Event, open_recording
from drivesim.sim import Controls
from drivesim.sim.world import RoadState


class AlwaysLeft:
    """A deliberately bad policy: full left lock, gentle throttle."""

    kind = DriverKind.POLICY

    def reset(self, world):
        pass

    def act(self, world, frames):
        return Controls(1.0, 0.4)


@pytest.fixture(scope="module")
def short_track(repo_root):
    return str(repo_root / "tracks" / "val" / "val-000.json")


def config_for(track, **kwargs):
    return EvalConfig(tracks=track, randomization=RandomizationConfig.preset("none"), **kwargs)


def test_expert_as_driver_needs_no_intervention(short_track):
    result = evaluate(ExpertDriver(), config_for(short_track, laps=1.0), name="expert")
    overall = result.overall
    assert overall["interventions"] == 0 and overall["crashes"] == 0
    assert overall["autonomy_pct"] == 100.0 and overall["laps"] == 1 and overall["clean_lap_share"] == 1.0
    assert overall["mean_abs_offset_m"] < 0.3


@pytest.mark.parametrize("settle_time", [1.0, 0.0])  # 0: hand back the moment the car is settled, not before
def test_bad_policy_is_taken_over_and_recovered(short_track, tmp_path, settle_time):
    envelope = InterventionConfig(settle_time=settle_time)
    config = config_for(short_track, laps=0.5, interventions=envelope)
    result = evaluate(AlwaysLeft(), config, record=tmp_path / "rec", name="always-left")
    metrics = result.overall
    assert metrics["interventions"] >= 2 and metrics["autonomy_pct"] < 90
    recording = open_recording(tmp_path / "rec")
    with h5py.File(recording.shard_path(0), "r") as f:
        events, driver = f["meta/events"][...], f["meta/driver"][...]
        offset, label = f["state/lateral_offset"][...], f["labels/steering"][...]
        heading = f["state/heading_error"][...]
    starts = np.flatnonzero(events & Event.INTERVENTION_START)
    recovering = (events & Event.RECOVERING) != 0
    assert len(starts) == metrics["interventions"]
    # The policy's frames are flagged as policy, the recovery frames as expert.
    assert np.all(driver[recovering] == DriverKind.EXPERT) and np.any(driver == DriverKind.POLICY)
    # Each intervention starts out of the envelope; the expert brings the car back before handing over.
    first = starts[0]
    assert abs(offset[first]) > envelope.max_lateral_offset or abs(heading[first]) > envelope.max_heading_error or bool(events[first] & Event.OFF_ROAD)
    assert abs(offset[first - 1]) <= envelope.max_lateral_offset and abs(heading[first - 1]) <= envelope.max_heading_error
    handback = first + np.argmax(~recovering[first + 1 :]) + 1
    # The expert hands back only after the car has been settled for settle_time: the states after its last
    # steps (frames handback - n + 1 .. handback) are all inside the settle envelope.
    n = max(1, round(settle_time / 0.05))  # CarConfig.dt
    assert handback - first >= n
    window = slice(handback - n + 1, handback + 1)
    assert np.all(np.abs(offset[window]) < envelope.settle_offset) and np.all(np.abs(heading[window]) < envelope.settle_heading)
    # While the policy steers left, the expert's label steers right.
    assert label[first] < 0


class AlwaysLeftAsExpert(AlwaysLeft):
    """The bad policy under the expert's kind, as the reference row's driver is: its recoveries share its kind."""

    kind = DriverKind.EXPERT


def test_an_expert_kind_driver_is_not_credited_with_the_expert_recoveries(short_track, tmp_path):
    result = evaluate(AlwaysLeftAsExpert(), config_for(short_track, laps=0.5), record=tmp_path / "rec", name="left")
    with h5py.File(open_recording(tmp_path / "rec").shard_path(0), "r") as f:
        events, offset = f["meta/events"][...], f["state/lateral_offset"][...]
    own = (events & Event.RECOVERING) == 0
    assert 0.05 < own.mean() < 0.95
    assert result.overall["own_control_share"] == pytest.approx(own.mean())
    assert result.overall["mean_abs_offset_m"] == pytest.approx(float(np.abs(offset[own]).mean()), rel=1e-5)


def test_without_interventions_the_bad_policy_crashes_and_the_episode_ends(short_track, tmp_path):
    config = config_for(short_track, laps=1.0, interventions=InterventionConfig(enabled=False), end_on_crash=True)
    result = evaluate(AlwaysLeft(), config, record=tmp_path / "rec", name="always-left")
    assert result.overall["crashes"] == 1 and result.overall["interventions"] == 0
    with h5py.File(open_recording(tmp_path / "rec").shard_path(0), "r") as f:
        events = f["meta/events"][...]
    assert events[-1] & Event.CRASH and not np.any(events[:-1] & Event.CRASH)
    assert result.overall["distance_km"] < 0.2


def _road(offset: float = 0.0, heading: float = 0.0, off_road: bool = False, crashed: bool = False) -> RoadState:
    return RoadState(0.0, 0.0, 0, offset, offset, heading, 0.0, off_road, crashed)


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_the_envelope_is_left_right_symmetric(side):
    """Drifting right out of the lane is an intervention as drifting left is; the settle envelope is symmetric too."""
    envelope = InterventionConfig(max_lateral_offset=1.5, max_heading_error=0.5, settle_offset=0.3, settle_heading=0.1)
    assert not envelope.violated(_road(side * 1.4, side * 0.45))
    assert envelope.violated(_road(side * 1.6)) and envelope.violated(_road(heading=side * 0.6))
    assert envelope.violated(_road(off_road=True)) and envelope.violated(_road(crashed=True))
    assert not InterventionConfig(on_off_road=False).violated(_road(off_road=True))
    assert envelope.settled(_road(side * 0.25, side * 0.05))
    assert not envelope.settled(_road(side * 0.35)) and not envelope.settled(_road(heading=side * 0.15))


def test_autonomy_is_floored_at_zero():
    """More interventions than 6 s each fit into the elapsed time would give a negative autonomy: it reads 0."""
    n, dt = 100, 0.1  # 10 s: two interventions charge 12 s
    events = np.zeros(n, dtype=np.int64)
    events[[0, 10, 60]] = [Event.EPISODE_RESET, Event.INTERVENTION_START, Event.INTERVENTION_START]
    driver = np.full(n, int(DriverKind.POLICY))
    progress = np.arange(n, dtype=float)
    trace = Trace(driver, events, np.arange(n) * dt, progress, np.zeros(n), np.zeros(n), np.full(n, 10.0), progress, np.zeros(n))
    metrics = closed_loop_metrics(trace, dt, DriverKind.POLICY)
    assert metrics["interventions"] == 2 and metrics["autonomy_pct"] == 0.0


def test_metrics_on_a_hand_made_trajectory():
    # 200 frames at 0.1 s (20 s), 10 m/s along the road: 2 km? No: 200 * 1 m = 199 m between first and last frame.
    n, dt = 200, 0.1
    progress = np.arange(n, dtype=float) * 1.0
    driver = np.full(n, int(DriverKind.POLICY))
    driver[50:60] = int(DriverKind.EXPERT)
    events = np.zeros(n, dtype=np.int64)
    events[0] = Event.EPISODE_RESET
    events[50] = Event.INTERVENTION_START
    events[51:60] = Event.RECOVERING
    events[120] = Event.INTERVENTION_START | Event.CRASH
    events[121] = Event.CRASH
    offset = np.where(np.arange(n) % 2 == 0, 0.2, -0.4)
    steering = np.where(np.arange(n) % 2 == 0, 0.1, -0.1)
    trace = Trace(driver, events, np.arange(n) * dt, progress, offset, steering, np.full(n, 10.0), progress, np.zeros(n))
    metrics = closed_loop_metrics(trace, dt, DriverKind.POLICY, laps=lap_flags(trace, track_length=100.0))
    assert metrics["interventions"] == 2
    assert metrics["autonomy_pct"] == pytest.approx((1 - 2 * 6.0 / 20.0) * 100)  # 40 %
    assert metrics["distance_km"] == pytest.approx(0.199)
    assert metrics["interventions_per_km"] == pytest.approx(2 / 0.199)
    assert metrics["km_per_intervention"] == pytest.approx(0.199 / 2)
    assert metrics["crashes"] == 1
    # Lap 0 (0-99 m) holds the intervention at 50 m; lap 1 is incomplete (199 m < 200 m).
    assert (metrics["laps"], metrics["clean_laps"], metrics["clean_lap_share"]) == (1, 0, 0.0)
    # Policy frames: 190, offsets alternate 0.2 / 0.4 in equal numbers.
    assert metrics["mean_abs_offset_m"] == pytest.approx(0.3)
    assert metrics["rms_offset_m"] == pytest.approx(np.sqrt((0.04 + 0.16) / 2))
    # Steering alternates by 0.2 each frame: 2 per second, over consecutive policy frames.
    assert metrics["mean_abs_steering_rate"] == pytest.approx(2.0)
    assert metrics["mean_speed_mps"] == 10.0
    assert metrics["own_control_share"] == pytest.approx(0.95)


def test_eval_cli_writes_report(short_track, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "drivesim.cli", "eval", "--model", "expert", "--tracks", short_track, "--laps", "0.3", "--report", str(tmp_path / "r"), "--randomize", "none", "--looks", "2", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "| expert | 100.00 | 0 |" in result.stdout
    assert (tmp_path / "r" / "metrics.json").exists() and (tmp_path / "r" / "expert.png").stat().st_size > 10_000
    bad = subprocess.run([sys.executable, "-m", "drivesim.cli", "eval", "--model", str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no such checkpoint" in bad.stderr
    # A damaged checkpoint is a user's file gone wrong: one line, no traceback, no report.
    (tmp_path / "damaged.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    damaged = subprocess.run(
        [sys.executable, "-m", "drivesim.cli", "eval", "--model", str(tmp_path / "damaged.safetensors"), "--report", str(tmp_path / "r2")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert damaged.returncode == 2 and damaged.stderr.startswith("drivesim: error:") and len(damaged.stderr.strip().splitlines()) == 1, damaged.stderr
    assert "truncated or corrupt" in damaged.stderr and not (tmp_path / "r2").exists()


def test_record_folder_must_be_new(short_track, tmp_path):
    from drivesim.evaluate import EvaluationError

    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "something.txt").write_text("keep me")
    with pytest.raises(EvaluationError, match="not empty"):
        evaluate(ExpertDriver(), config_for(short_track, laps=0.1), record=tmp_path / "rec")
    assert (tmp_path / "rec" / "something.txt").read_text() == "keep me"


def test_eval_answers_a_full_record_folder_and_a_missing_track_before_loading_the_network(short_track, tmp_path):
    # Both were found only after torch and the checkpoint had loaded (seconds); the model here does not exist,
    # so an answer about it would mean it was looked at first.
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "something.txt").write_text("keep me")
    for extra, message in ((["--tracks", short_track, "--record", tmp_path / "rec"], "rec already exists and is not empty; --record needs a new folder"),
                           (["--tracks", tmp_path / "no-such-tracks"], "no-such-tracks")):
        result = subprocess.run([sys.executable, "-m", "drivesim.cli", "eval", "--model", str(tmp_path / "no-such-model"), *map(str, extra)],
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert result.returncode == 2 and message in result.stderr and "no-such-model" not in result.stderr, result.stderr
    assert (tmp_path / "rec" / "something.txt").read_text() == "keep me"


class SteersByBrightness:
    """A batch driver whose steering is a function of its own frame, so a frame handed to the wrong world shows."""

    kind = DriverKind.POLICY

    def reset(self, world):
        pass

    def act_batch(self, worlds, frames):
        return [Controls(float(f["center"][60:].mean()) / 255.0 - 0.2, 0.4 - 0.04 * w.car.speed) for w, f in zip(worlds, frames, strict=True)]


def test_each_look_is_its_own_run_and_look_0_is_the_single_look_run(short_track, tmp_path):
    light = RandomizationConfig.preset("light")
    single = evaluate(SteersByBrightness(), EvalConfig(tracks=short_track, laps=0.06, randomization=light))
    two = evaluate(SteersByBrightness(), EvalConfig(tracks=short_track, laps=0.06, randomization=light, looks=2), record=tmp_path / "rec")
    assert [run.name for run in two.runs] == ["val-000 look 0", "val-000 look 1"]
    np.testing.assert_array_equal(two.runs[0].trace.steering, single.runs[0].trace.steering)
    # Another look is another picture, so a driver that steers by brightness drives differently.
    assert not np.array_equal(two.runs[1].trace.steering[:50], two.runs[0].trace.steering[:50])
    assert two.overall["frames"] == len(two.runs[0].trace.steering) + len(two.runs[1].trace.steering)
    recording = open_recording(tmp_path / "rec")
    assert recording.frames == two.overall["frames"] and len(recording.shards) == 2


def test_runs_shared_out_to_processes_drive_and_record_as_in_one(short_track, tmp_path):
    # SteersByBrightness answers each world from its own frame alone, so the split into processes
    # must change nothing: the same traces, the same shards, in run order.
    config = EvalConfig(tracks=short_track, laps=0.05, randomization=RandomizationConfig.preset("light"), looks=3)
    one = evaluate(SteersByBrightness(), config, record=tmp_path / "one")
    two = evaluate(SteersByBrightness(), config, record=tmp_path / "two", workers=2)
    assert [run.name for run in two.runs] == [run.name for run in one.runs]
    for a, b in zip(one.runs, two.runs, strict=True):
        np.testing.assert_array_equal(a.trace.steering, b.trace.steering)
        np.testing.assert_array_equal(a.trace.lateral_offset, b.trace.lateral_offset)
    assert two.overall == one.overall
    first, second = open_recording(tmp_path / "one"), open_recording(tmp_path / "two")
    assert len(second.shards) == 3 and second.frames == first.frames
    for k in range(3):
        with h5py.File(first.shard_path(k), "r") as f, h5py.File(second.shard_path(k), "r") as g:
            np.testing.assert_array_equal(f["images/center"][...], g["images/center"][...])
            np.testing.assert_array_equal(f["labels/steering"][...], g["labels/steering"][...])


def test_a_recording_holds_what_its_lap_counts_are_recomputed_from(short_track, tmp_path):
    # docs/metrics.md: every metric can be recomputed from a --record recording; clean laps need the track's
    # length, once only in the track file (whose path the recording did not keep).
    from drivesim.metrics import TRACE_COLUMNS

    result = evaluate(ExpertDriver(), config_for(short_track, laps=1.05), record=tmp_path / "rec")
    recording = open_recording(tmp_path / "rec")
    with h5py.File(recording.shard_path(0), "r") as f:
        (episode,) = json.loads(f.attrs["tracks"])
        trace = Trace(**{column: f[name][...] for column, name in TRACE_COLUMNS.items()})
    assert episode["track_length"] == result.runs[0].track.length
    assert lap_flags(trace, episode["track_length"]) == lap_flags(result.runs[0].trace, result.runs[0].track.length) == (1, 1)


def test_split_runs_balances_expected_frames():
    from drivesim.evaluate import split_runs

    groups = split_runs([100, 900, 500, 400, 50], 2)
    assert sorted(r for g in groups for r in g) == [0, 1, 2, 3, 4] and all(g == sorted(g) for g in groups)
    loads = sorted(sum([100, 900, 500, 400, 50][r] for r in g) for g in groups)
    assert loads == [950, 1000]
    assert split_runs([10, 20], 8) == [[1], [0]]  # never more processes than runs
    assert split_runs([10], 1) == [[0]]


class FailsOnTrack:
    """Drives straight on; on `track` after a few steps it raises, or with `die` its process exits at once."""

    kind = DriverKind.POLICY

    def __init__(self, track, die=False):
        self.track, self.die = track, die

    def reset(self, world):
        pass

    def act_batch(self, worlds, frames):
        if any(w.track.name == self.track and w.steps > 5 for w in worlds):
            if self.die:
                import os

                os._exit(1)  # as an out-of-memory kill would
            raise RuntimeError("network failed")
        return [Controls(0.0, 0.3) for _ in worlds]


@pytest.fixture()
def two_tracks(two_val_tracks):
    return str(two_val_tracks)


@pytest.mark.parametrize("die", [False, True])
def test_a_failing_process_stops_the_others_and_leaves_no_recording(two_tracks, tmp_path, die):
    import time

    from drivesim.evaluate import EvaluationError

    # The other process has 20 laps to drive: if it were left to finish, this would take minutes.
    config = EvalConfig(tracks=two_tracks, laps=20.0, randomization=RandomizationConfig.preset("none"))
    start = time.perf_counter()
    with pytest.raises(EvaluationError if die else RuntimeError, match="worker process died" if die else "network failed"):
        evaluate(FailsOnTrack("val-000", die), config, record=tmp_path / "new" / "rec", workers=2)
    assert time.perf_counter() - start < 40
    assert not (tmp_path / "new").exists()  # no shard, no .tmp, no folder made for it: the same --record can be used again


def test_report_draws_every_look_of_a_track_in_one_row(short_track, tmp_path):
    from drivesim.report import plot_runs, runs_by_track

    light = RandomizationConfig.preset("light")
    two = evaluate(SteersByBrightness(), EvalConfig(tracks=short_track, laps=0.06, randomization=light, looks=2))
    rows = runs_by_track(two)
    assert [(track.name, [run.look for run in runs]) for track, runs in rows] == [("val-000", [0, 1])]
    # Two tracks that happen to share a name stay two rows.
    other = replace(two.runs[1], track=copy.copy(two.runs[1].track))
    assert len(runs_by_track(replace(two, runs=[two.runs[0], other]))) == 2
    image = cv2.imdecode(np.frombuffer(plot_runs(two), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[0] == round(3.2 * 80)  # one row for the track, not one per look


def test_drawing_a_report_leaves_matplotlib_as_it_was_and_draws_any_model_name_quietly(short_track):
    import warnings

    import matplotlib

    from drivesim.report import plot_runs

    evaluation = evaluate(SteersByBrightness(), EvalConfig(tracks=short_track, laps=0.03))
    before = matplotlib.get_backend()
    matplotlib.use("svg")  # a notebook's or a script's own choice, which a report must not switch to Agg
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            picture = plot_runs(replace(evaluation, driver="models/模型-試験"))  # a font without CJK glyphs warned for each
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    assert [str(w.message) for w in caught] == []
    assert picture.startswith(b"\x89PNG")


def test_a_report_over_an_earlier_one_removes_the_earlier_drivers_pictures_only(short_track, tmp_path):
    from drivesim.report import write_report

    run = evaluate(ExpertDriver(), config_for(short_track, laps=0.03), name="expert")
    folder = tmp_path / "r"
    write_report([run, replace(run, driver="expert (reference)")], folder)
    (folder / "notes.png").write_bytes(b"the user's own")
    assert {p.name for p in folder.iterdir()} == {"metrics.json", "metrics.md", "expert.png", "expert--reference.png", "notes.png"}
    write_report([replace(run, driver="models/try")], folder)  # as eval --no-reference into the same --report
    assert {p.name for p in folder.iterdir()} == {"metrics.json", "metrics.md", "try.png", "notes.png"}

    # Another tool's metrics.json names no pictures of a report: its neighbours stay.
    theirs = tmp_path / "results"
    theirs.mkdir()
    (theirs / "metrics.json").write_text(json.dumps({"loss": [1, 2], "accuracy": {"top1": 0.9}}))
    (theirs / "loss.png").write_bytes(b"theirs")
    (theirs / "accuracy.png").write_bytes(b"theirs")
    write_report([run], theirs)
    assert {p.name for p in theirs.iterdir()} == {"metrics.json", "metrics.md", "expert.png", "loss.png", "accuracy.png"}


def test_the_report_trail_breaks_where_a_crash_put_the_car_back(short_track):
    from drivesim.render.topdown import TopDownMap
    from drivesim.report import draw_trail, trail_parts
    from drivesim.track import load_tracks

    events = np.zeros(10, dtype=np.int64)
    events[0] = Event.EPISODE_RESET  # every episode's first frame
    events[3] = Event.CRASH | Event.OFF_ROAD
    events[4] = Event.EPISODE_RESET  # the car back on the lane centre
    events[8] = Event.INTERVENTION_START
    assert trail_parts(events) == [slice(0, 4), slice(4, 10)]
    assert trail_parts(events[:1]) == [slice(0, 1)]
    # Drawn: the crash point (frame 3) and the respawn point (frame 4) are far apart; nothing joins them.
    track = load_tracks(short_track)[0]
    view = TopDownMap(track, (360, 360), margin=14)
    x = np.array([0, 2, 4, 6, 60, 62, 64, 66, 68, 70], float) + track.bounds[0]
    y = np.full(10, (track.bounds[1] + track.bounds[3]) / 2)
    trace = hand_trace(np.arange(10.0), events=events)
    trace.x, trace.y = x, y
    image = view.draw()
    draw_trail(view, image, trace)
    (mx, my), (ax, ay) = view.to_pixels(np.array([[(x[3] + x[4]) / 2, y[0]], [x[1], y[0]]])).round().astype(int)
    assert np.array_equal(image[my, mx], view.draw()[my, mx])  # midway between crash and respawn: untouched
    assert not np.array_equal(image[ay, ax], view.draw()[ay, ax])  # on the driven line: drawn


def hand_trace(progress, driver=None, events=None, time=None, steering=None, dt=0.1):
    n = len(progress)
    driver = np.full(n, int(DriverKind.POLICY)) if driver is None else np.asarray(driver)
    events = np.zeros(n, dtype=np.int64) if events is None else np.asarray(events)
    time = np.arange(n) * dt if time is None else np.asarray(time, dtype=float)
    steering = np.zeros(n) if steering is None else np.asarray(steering, dtype=float)
    progress = np.asarray(progress, dtype=float)
    return Trace(driver, events, time, progress, np.zeros(n), steering, np.full(n, 10.0), progress, np.zeros(n))


def test_a_lap_the_expert_is_still_recovering_in_is_not_clean():
    # The recovery from an intervention of lap 0 runs on into lap 1, where nothing else happens: lap 1 is not clean.
    events = np.zeros(300, dtype=np.int64)
    events[95] = Event.INTERVENTION_START
    events[96:110] = Event.RECOVERING
    assert lap_flags(hand_trace(np.arange(300), events=events), track_length=100.0) == (2, 0)


def test_a_crash_from_the_first_frame_on_is_counted():
    assert count_rising(np.array([True, True, False, True])) == 2
    events = np.zeros(20, dtype=np.int64)
    events[0:3] = Event.CRASH
    events[0] |= Event.EPISODE_RESET
    assert closed_loop_metrics(hand_trace(np.arange(20), events=events), 0.1)["crashes"] == 1


@dataclasses.dataclass(frozen=True)
class ScriptedSettling(InterventionConfig):
    """The default envelope, but `settled` answers from `script` in turn (its last answer repeating),
    whatever the car does: the hand-back rule is tested apart from the physics."""

    script: tuple[bool, ...] = (True,)
    answered: list = dataclasses.field(default_factory=list)

    def settled(self, road):
        self.answered.append(road)
        return self.script[min(len(self.answered), len(self.script)) - 1]


def drive_always_left(track, interventions, steps):
    """Drive AlwaysLeft for `steps` with expert takeover, no camera; the per-frame events and drivers."""
    from drivesim.sim.world import World
    from drivesim.track import load_track

    class Frames:
        def __init__(self):
            self.records = []

        def add_frame(self, record):
            self.records.append(record)

    world, kept = World(load_track(track)), Frames()
    world.reset()
    run_episode(world, AlwaysLeft(), ExpertDriver(), EpisodeConfig(max_steps=steps, end_on_crash=False), None, kept, 0, interventions)
    return np.array([r["meta/events"] for r in kept.records]), np.array([r["meta/driver"] for r in kept.records])


def test_the_expert_hands_back_after_settle_time_settled_in_a_row_and_not_a_step_later(short_track):
    # Settled on every other step never adds up to settle_time (1 s): the expert keeps the wheel.
    events, driver = drive_always_left(short_track, ScriptedSettling(script=(True, False) * 200), steps=150)
    first = np.flatnonzero(events & Event.INTERVENTION_START)[0]
    assert np.all(driver[first:] == DriverKind.EXPERT)
    # Settled at once, settle_time 0.1 s = 2 steps of 0.05 s: the policy has the wheel again on the third frame,
    # and (still far out of the envelope) loses it at once: an intervention every second frame, not every third.
    events, driver = drive_always_left(short_track, ScriptedSettling(settle_time=0.1), steps=150)
    starts = np.flatnonzero(events & Event.INTERVENTION_START)
    assert len(starts) > 10 and set(np.diff(starts[:10])) == {2}  # (later a crash resets the car: a longer gap)


def test_after_a_crash_reset_the_evaluated_driver_has_the_wheel_at_once(short_track):
    # docs/metrics.md: a crash resets the car onto the lane centre, and the evaluated driver drives on from there.
    envelope = InterventionConfig(max_lateral_offset=50.0, max_heading_error=3.1, on_off_road=False)  # takeover on, never due
    events, driver = drive_always_left(short_track, envelope, steps=600)
    resets = np.flatnonzero(events & Event.EPISODE_RESET)[1:]
    assert len(resets) >= 1  # full left lock leaves the road
    assert np.all(driver[resets] == DriverKind.POLICY) and not np.any(events[resets] & Event.RECOVERING)


def test_a_crash_reset_frame_adds_no_time_and_troubled_laps_are_not_clean():
    dt = 0.1
    progress = np.arange(300, dtype=float)  # 1 m a frame; laps of 100 m: laps 0 and 1 complete, lap 2 not
    events = np.zeros(300, dtype=np.int64)
    events[0] = Event.EPISODE_RESET
    events[95] = Event.INTERVENTION_START  # starts in lap 0 ...
    events[96:110] = Event.RECOVERING  # ... and the expert is still recovering in lap 1
    events[150] = Event.CRASH  # a crash in lap 1 (kept progress), the reset frame repeats its time
    events[151] = Event.EPISODE_RESET
    steps = np.arange(300) * dt
    time = np.concatenate([steps[:151], steps[150:299]])  # frame 151 has frame 150's time, as World leaves it
    driver = np.full(300, int(DriverKind.POLICY))
    driver[95:110] = int(DriverKind.EXPERT)
    trace = hand_trace(progress, driver, events, time)
    metrics = closed_loop_metrics(trace, dt, DriverKind.POLICY, laps=lap_flags(trace, track_length=100.0))
    assert metrics["elapsed_s"] == pytest.approx(299 * dt)
    assert metrics["autonomy_pct"] == pytest.approx((1 - 6.0 / (299 * dt)) * 100)
    assert (metrics["laps"], metrics["clean_laps"]) == (2, 0)
    events[95:110] = 0  # no intervention: lap 0 is clean, lap 1 still holds the crash
    assert lap_flags(hand_trace(progress, driver, events, time), 100.0) == (2, 1)
    # The wheel jumps back to straight at the reset, in no time: that is not steering the driver did.
    steering = np.where(np.arange(300) <= 150, 0.5, 0.0)
    assert closed_loop_metrics(hand_trace(progress, np.full(300, int(DriverKind.POLICY)), events, time, steering), dt)["mean_abs_steering_rate"] == 0.0


def test_overall_sums_the_tracks_and_pools_steering_rate_over_evaluated_pairs():
    dt = 0.1
    # Track A ends slightly backwards (a car can roll back at a start); joining the traces must not count
    # the jump from -0.5 m back to track B's 0 m as distance.
    a = hand_trace([0.0, -0.2, -0.5], steering=[0.0, 0.1, 0.0])
    b = hand_trace(np.arange(11, dtype=float), driver=[1] * 6 + [0] * 5, steering=[0.0] * 11)
    b.events[5] = Event.INTERVENTION_START
    runs = [closed_loop_metrics(t, dt, DriverKind.POLICY, laps=(0, 0)) for t in (a, b)]
    overall = combine(runs, [a, b], dt, DriverKind.POLICY)
    assert overall["distance_km"] == pytest.approx(0.010)
    assert overall["elapsed_s"] == pytest.approx(1.4) and overall["frames"] == 14
    assert overall["interventions_per_km"] == pytest.approx(100.0)
    # Rates of evaluated pairs: A's two pairs at 1/s each, B's five policy pairs at 0.
    assert overall["mean_abs_steering_rate"] == pytest.approx(2.0 / 7)


def test_without_takeover_intervention_figures_are_not_reported():
    trace = hand_trace(np.arange(50, dtype=float))
    metrics = closed_loop_metrics(trace, 0.1, DriverKind.POLICY, takeover=False)
    assert metrics["autonomy_pct"] is None and metrics["interventions_per_km"] is None and metrics["km_per_intervention"] is None
    overall = combine([metrics], [trace], 0.1, DriverKind.POLICY, takeover=False)
    assert overall["autonomy_pct"] is None and overall["distance_km"] == pytest.approx(0.049)
    from drivesim.report import markdown_table

    with_takeover = closed_loop_metrics(trace, 0.1, DriverKind.POLICY)
    cells = {name: row.split(" | ")[4] for name, row in zip(("on", "off"), markdown_table([("on", with_takeover), ("off", metrics)]).splitlines()[2:], strict=True)}
    assert cells == {"on": "∞", "off": "–"}  # km per intervention: none in 49 m, or not measured at all


def test_a_network_drives_in_workers_forked_after_torch_ran_on_several_threads(tmp_path, repo_root):
    # As in `drivesim dagger`: the parent trained (torch's OpenMP pool up), then evaluates in processes. The
    # workers fork and must set torch to one thread before its first operation, or wait forever for the pool.
    script = tmp_path / "after_training.py"
    script.write_text(
        "import torch\n"
        "from drivesim.drivers.policy import PolicyDriver\n"
        "from drivesim.evaluate import EvalConfig, evaluate\n"
        "from drivesim.config import RandomizationConfig\n"
        "if __name__ == '__main__':\n"
        "    torch.set_num_threads(2)\n"
        "    x = torch.randn(64, 3, 120, 160)\n"
        "    for _ in range(3):\n"
        "        torch.nn.functional.conv2d(x, torch.randn(24, 3, 5, 5)).sum()  # the pool's threads start\n"
        f"    config = EvalConfig(tracks={str(repo_root / 'tracks' / 'val')!r}, laps=0.03, randomization=RandomizationConfig.preset('none'))\n"
        f"    result = evaluate(PolicyDriver({str(repo_root / 'models' / 'pilotnet-baseline')!r}), config, workers=2)\n"
        "    print('frames', result.overall['frames'], 'processes', result.config['processes'])\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "processes 2" in result.stdout


def test_a_network_gives_the_same_evaluation_twice_with_the_same_workers(repo_root):
    """README: the same --workers gives the same result, network and all (every run's trace, not just totals)."""
    from drivesim.drivers.policy import PolicyDriver

    config = EvalConfig(tracks=str(repo_root / "tracks" / "val"), laps=0.03, randomization=RandomizationConfig.preset("light"))
    policy = PolicyDriver(repo_root / "models" / "pilotnet-baseline")
    first, second = (evaluate(policy, config, workers=2) for _ in range(2))
    assert first.to_dict() == second.to_dict()
    for a, b in zip(first.runs, second.runs, strict=True):
        assert np.array_equal(a.trace.steering, b.trace.steering) and np.array_equal(a.trace.x, b.trace.x)


def test_one_and_two_lane_tracks_get_their_own_totals(repo_root, tmp_path, short_track):
    # A network that cannot tell the two apart fails on one kind only (docs/dagger.md); the split shows which.
    import shutil

    from drivesim.dagger import dagger_table
    from drivesim.report import write_report

    for name in ("val-000", "val-002"):  # one lane, two lanes
        shutil.copy(repo_root / "tracks" / "val" / f"{name}.json", tmp_path)
    mixed = evaluate(AlwaysLeft(), config_for(str(tmp_path), laps=0.15))
    assert sorted(mixed.by_lanes) == [1, 2]
    for key in ("interventions", "frames", "distance_km", "elapsed_s"):
        assert mixed.by_lanes[1][key] + mixed.by_lanes[2][key] == pytest.approx(mixed.overall[key])
    one_lane = next(run for run in mixed.runs if run.track.lanes == 1)
    assert mixed.by_lanes[1]["interventions"] == one_lane.metrics["interventions"] > 0
    stored = json.loads(write_report([mixed], tmp_path / "r").with_suffix(".json").read_text())["policy"]["by_lanes"]
    assert stored["2"]["interventions"] == mixed.by_lanes[2]["interventions"] and set(stored) == {"1", "2"}
    assert "## policy: by lanes" in (tmp_path / "r" / "metrics.md").read_text()
    assert evaluate(AlwaysLeft(), config_for(short_track, laps=0.05)).by_lanes == {}

    row = {"name": "x", "frames": 1, **mixed.overall, "interventions_per_km_by_lanes": {k: m["interventions_per_km"] for k, m in mixed.by_lanes.items()}}
    table = dagger_table([row])
    assert "| 1-lane interv./km | 2-lane interv./km |" in table and f"| {mixed.by_lanes[2]['interventions_per_km']:.2f} |" in table


def test_a_report_stopped_midway_is_whole_or_absent(short_track, tmp_path, monkeypatch):
    # dagger takes an evaluation folder holding metrics.json as done: it must be written after the pictures.
    import drivesim.report as report

    evaluation = evaluate(AlwaysLeft(), config_for(short_track, laps=0.05))
    report.write_report([evaluation], tmp_path / "earlier")
    before = {p.name: p.read_bytes() for p in (tmp_path / "earlier").iterdir()}
    drawn = report.plot_runs

    def stopped_at_the_second_picture(evaluation):
        if evaluation.driver == "second":
            raise KeyboardInterrupt  # Ctrl-C while drawing, the slow part
        return drawn(evaluation)

    monkeypatch.setattr(report, "plot_runs", stopped_at_the_second_picture)
    with pytest.raises(KeyboardInterrupt):
        report.write_report([replace(evaluation, driver="first"), replace(evaluation, driver="second")], tmp_path / "earlier")
    assert {p.name: p.read_bytes() for p in (tmp_path / "earlier").iterdir()} == before  # the earlier report, untouched
    with pytest.raises(KeyboardInterrupt):
        report.write_report([replace(evaluation, driver="second")], tmp_path / "new" / "r")
    assert not (tmp_path / "new").exists()

    def full_disk(path, data):
        if path.name == "metrics.md":
            raise OSError(28, "No space left on device", str(path))
        return written(path, data)

    written = report.write_atomically
    monkeypatch.setattr(report, "plot_runs", drawn)
    monkeypatch.setattr(report, "write_atomically", full_disk)
    with pytest.raises(OSError, match="No space left"):
        report.write_report([replace(evaluation, driver="third")], tmp_path / "earlier")
    # No report rather than a mix of two: nothing of the earlier one, nor of the one cut short.
    assert not list((tmp_path / "earlier").iterdir())
    with pytest.raises(OSError, match="No space left"):
        report.write_report([evaluation], tmp_path / "new" / "r")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("when", ["network", "reference", "network, SIGHUP"])
def test_ctrl_c_in_eval_says_what_it_left(repo_root, tmp_path, terminal, when):
    """And SIGHUP or SIGTERM (a closed ssh session, a batch scheduler) stops it the same way."""
    import os
    import signal
    import time

    record, report = tmp_path / "new" / "rec", tmp_path / "report"
    args = ["eval", "--model", repo_root / "models" / "pilotnet-baseline", "--tracks", repo_root / "tracks" / "val" / "val-000.json",
            "--laps", 1, "--randomize", "none", "--workers", 1, "--record", record, "--report", report]  # a lap: a second or two each run
    process = terminal.start(*args)
    try:
        deadline = time.time() + 240
        # The network's run records into a temporary shard; the manifest comes when it is done, before the reference run.
        started = (lambda: list(record.glob("*.tmp"))) if when.startswith("network") else (lambda: (record / "manifest.json").exists())
        while not started():
            assert process.poll() is None and time.time() < deadline, process.communicate()
            time.sleep(0.02)
        if when.endswith("SIGHUP"):  # a closed terminal: to the process group
            os.killpg(process.pid, signal.SIGHUP)
        else:
            terminal.ctrl_c(process)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    last = err.strip().splitlines()[-1]
    assert not report.exists(), err
    if when.endswith("SIGHUP"):
        assert process.returncode == 128 + signal.SIGHUP, err
        assert last == "drivesim: SIGHUP: interrupted; no recording or report was written" and not (tmp_path / "new").exists(), err
        return
    assert process.returncode == 130, err
    if when == "network":
        assert last == "drivesim: interrupted; no recording or report was written" and not (tmp_path / "new").exists(), err
    else:
        assert last == f"drivesim: interrupted; the recording in {record} is complete, and no report was written", err
        assert open_recording(record).manifest.frames > 0


def test_eval_config_file_sets_the_envelope_and_options_override_it(short_track, tmp_path):
    """An envelope tighter than the expert's own line (a few cm off centre) makes even the expert be taken over."""
    config = tmp_path / "strict.json"
    config.write_text(json.dumps({"laps": 5, "randomization": {"level": "none"}, "interventions": {"max_lateral_offset": 0.03, "settle_offset": 0.01}}))

    def run(*args):
        command = [sys.executable, "-m", "drivesim.cli", "eval", "--model", "expert", "--tracks", short_track, "--config", config, "--laps", "0.3", "--workers", "1", *args]
        result = subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()[2]

    strict = run("--report", tmp_path / "r")
    assert int(strict.split("|")[3]) >= 1, strict  # the interventions column
    stored = json.loads((tmp_path / "r" / "metrics.json").read_text())["expert"]["config"]
    assert stored["laps"] == 0.3 and stored["interventions"]["max_lateral_offset"] == 0.03 and stored["randomization"]["level"] == "none"
    assert run("--no-interventions").startswith("| expert | – | 0 | – |")  # the option beats the file: no takeover, no autonomy figure
    config.write_text(json.dumps({"interventions": {"max_lateral_offset": 0.03}}))  # settle_offset (0.3) now exceeds it
    bad = subprocess.run([sys.executable, "-m", "drivesim.cli", "eval", "--model", "expert", "--config", str(config)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "max_lateral_offset > settle_offset" in bad.stderr and "Traceback" not in bad.stderr


def test_runs_beyond_one_lockstep_batch_are_driven_in_turn_with_the_same_results(short_track, tmp_path, monkeypatch):
    # 50 looks of 10 tracks in lock-step once took gigabytes: runs are now driven LOCKSTEP_RUNS_MAX at a time.
    import drivesim.evaluate as evaluation

    config = EvalConfig(tracks=short_track, laps=0.03, looks=3, randomization=RandomizationConfig.preset("light"))
    together = evaluate(ExpertDriver(config.expert), config, record=tmp_path / "together")
    monkeypatch.setattr(evaluation, "LOCKSTEP_RUNS_MAX", 2)
    batches = []

    def counting_run_batched(episodes, driver, on_round=None):
        batches.append(len(episodes))
        return run_batched(episodes, driver, on_round=on_round)

    monkeypatch.setattr(evaluation, "run_batched", counting_run_batched)
    in_turn = evaluate(ExpertDriver(config.expert), config, record=tmp_path / "in-turn")
    assert batches == [2, 1]
    assert in_turn.config["lockstep_runs"] == 2
    assert [run.look for run in in_turn.runs] == [0, 1, 2]
    assert [run.metrics for run in in_turn.runs] == [run.metrics for run in together.runs]
    assert open_recording(tmp_path / "in-turn").manifest.shards == open_recording(tmp_path / "together").manifest.shards
