"""Closed-loop evaluation: a driver drives held-out tracks, the expert watches and takes over.

Every track gets one episode of `laps` laps from the start line (one per
look). The episodes advance in lock-step, so a network drives all of them
with one batched forward pass per step; with `workers` the episodes are
shared out to that many processes, each a lock-step loop of its own, so the
simulator of one runs while the network of another does (a single loop
leaves a core idle whenever it simulates). The expert labels every frame and intervenes
when the car leaves the safe envelope (see `drivesim.loop`). Each episode can
be recorded (one shard per track) so that the interventions and recoveries
become training data.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drivesim.atomic import FolderInUse, missing_folders, remove_empty_folders, writing_alone
from drivesim.config import (
    MAX_LAPS,
    MIN_LAPS,
    CarConfig,
    EpisodeConfig,
    ExpertConfig,
    InterventionConfig,
    RandomizationConfig,
    RigConfig,
    WorldConfig,
    check,
    to_dict,
)
from drivesim.drivers import ExpertDriver
from drivesim.drivers.base import Driver, DriverKind
from drivesim.errors import DrivesimError
from drivesim.loop import Episode, run_batched
from drivesim.metrics import TRACE_COLUMNS, Trace, closed_loop_metrics, combine, lap_flags
from drivesim.processes import WORKER_DIED, report_progress, run_in_workers, stop_requested, usable_cores
from drivesim.record import ShardInfo, ShardWriter, shard_name, write_manifest
from drivesim.record.schema import TMP_SUFFIX
from drivesim.render.frame_source import RigView
from drivesim.render.scene import Scene, build_scene
from drivesim.sim import Controls, World
from drivesim.track import Track, load_tracks

MIN_MEAN_SPEED = 2.0
"""An episode is cut off after the time it would take at this speed [m/s], so a car that stops cannot hang the run."""


@dataclass(frozen=True)
class EvalConfig:
    """How a driver is evaluated."""

    tracks: str = "tracks/holdout"
    """Folder (or file) of tracks to drive."""
    laps: float = 2.0
    """Laps per track."""
    seed: int = 0
    """Seeds the per-track appearance."""
    looks: int = 1
    """Appearances each track is driven in; look k of track i is drawn from seed (seed + k, i). One look decides
    much of a track's score (a previous baseline scored 69 % and 78 % autonomy with seeds 0 and 1), so several give a steadier figure."""
    randomization: RandomizationConfig = RandomizationConfig.preset("light")
    """Look of the world; the appearances are drawn as `looks` says."""
    interventions: InterventionConfig = InterventionConfig()
    """When the expert takes over, when it hands back, what a crash does."""
    end_on_crash: bool = False
    """End a track's episode at its first crash (distance to first failure)."""
    rig: RigConfig = RigConfig()
    """Cameras; the network looks through its own (center by default)."""
    car: CarConfig = CarConfig()
    world: WorldConfig = WorldConfig()
    expert: ExpertConfig = ExpertConfig()

    def __post_init__(self) -> None:
        check(MIN_LAPS <= self.laps <= MAX_LAPS, f"laps must be in [{MIN_LAPS}, {MAX_LAPS}]")
        check(self.looks >= 1, "looks must be >= 1")
        check(self.seed >= 0, f"seed must be >= 0, got {self.seed}")


class EvaluationError(DrivesimError):
    """An evaluation cannot run as asked."""


class TraceRecorder:
    """Keeps the trace columns of every frame, and passes frames on to a shard writer if one is given."""

    def __init__(self, writer: ShardWriter | None = None) -> None:
        self.writer = writer
        self.columns: dict[str, list[Any]] = {name: [] for name in TRACE_COLUMNS}

    def add_frame(self, record: Mapping[str, Any]) -> None:
        for column, name in TRACE_COLUMNS.items():
            self.columns[column].append(record[name])
        if self.writer is not None:
            self.writer.add_frame(record)

    def trace(self) -> Trace:
        return Trace(**{column: np.asarray(values) for column, values in self.columns.items()})


class PerWorld:
    """Lets a plain driver act in `run_batched`: one `act` per world."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.kind = driver.kind

    def reset(self, world: World) -> None:
        self.driver.reset(world)

    def act_batch(self, worlds: Sequence[World], frames: Sequence[Mapping[str, np.ndarray]]) -> list[Controls]:
        return [self.driver.act(w, f) for w, f in zip(worlds, frames, strict=True)]


@dataclass
class TrackRun:
    """One track's evaluation in one look."""

    track: Track
    trace: Trace
    metrics: dict[str, Any]
    look: int = 0
    """Which of `EvalConfig.looks` it was driven in."""
    looks: int = 1
    """How many looks the evaluation drove each track in."""

    @property
    def name(self) -> str:
        """The track's name, with the look when there were several."""
        return self.track.name if self.looks == 1 else f"{self.track.name} look {self.look}"


@dataclass
class Evaluation:
    """Per-track and overall metrics of one driver."""

    driver: str
    """'expert' or the checkpoint path."""
    runs: list[TrackRun]
    overall: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    by_lanes: dict[int, dict[str, Any]] = field(default_factory=dict)
    """The overall metrics of the one-lane and of the two-lane tracks, when both kinds were driven: a
    network that cannot tell them apart keeps right on one-lane roads or drives down the middle of
    two-lane ones, and only this split shows it."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "driver": self.driver,
            "overall": self.overall,
            "by_lanes": {str(lanes): metrics for lanes, metrics in self.by_lanes.items()},
            "tracks": {run.name: run.metrics for run in self.runs},
            "config": self.config,
        }


def _track_episode(
    episode: int,
    index: int,
    look: int,
    track: Track,
    driver: Any,
    config: EvalConfig,
    record: Path | None,
    attrs_config: dict[str, Any],
    writers: list[tuple[ShardWriter, dict[str, Any]]],
    scene: Scene | None = None,
) -> Episode:
    """Track `index`'s episode from the start line, with its appearance drawn from (seed + look, index)."""
    world = World(track, config.car, config.world)
    view = RigView(track, config.rig, config.randomization, scene)
    appearance = view.start_episode(np.random.default_rng([config.seed + look, index]))
    writer = None
    if record is not None:
        writer = ShardWriter(Path(record) / shard_name(episode), view.camera_shapes(), {"config": attrs_config, "camera_intrinsics": view.intrinsics()})
        writers.append((writer, {"episode": episode, "track": track.name, "track_seed": track.seed, "track_length": track.length, "look": look, **appearance}))
    max_steps = math.ceil(config.laps * track.length / MIN_MEAN_SPEED / config.car.dt)
    episode_config = EpisodeConfig(laps=config.laps, max_steps=max_steps, end_on_crash=config.end_on_crash)
    # The labelling expert is its own object, never the driver under test (even when that is an
    # expert too): interventions apply only to a driver that is not the labeller.
    return Episode(world, driver, ExpertDriver(config.expert), episode_config, view, TraceRecorder(writer), episode, config.interventions)


@dataclass
class _Driven:
    """What driving one run gave: its trace, and its shard when recording."""

    episode: int
    trace: Trace
    shard: ShardInfo | None


def split_runs(frames: Sequence[float], workers: int) -> list[list[int]]:
    """Run indices for each of at most `workers` processes, longest runs first onto the least loaded
    process, each list in run order. `frames` are the runs' expected frame counts."""
    groups: list[list[int]] = [[] for _ in range(max(1, min(workers, len(frames))))]
    load = [0.0] * len(groups)
    for run in sorted(range(len(frames)), key=lambda r: (-frames[r], r)):
        lightest = load.index(min(load))
        groups[lightest].append(run)
        load[lightest] += frames[run]
    return [sorted(group) for group in groups if group]


LOCKSTEP_RUNS_MAX = 16
"""Most runs one process drives in lock-step at a time. Each holds its look's textures, its view and its trace
(about 14 MB at 160x120), so 50 looks of the 10 holdout tracks at once took gigabytes; 16 give the network
batches big enough to run well, and the usual evaluations (up to 3 looks of 10 tracks on 2 processes) fit in one."""


def _drive(
    driver: Any,
    config: EvalConfig,
    tracks: list[Track],
    runs: Sequence[tuple[int, int, int]],
    record: Path | None,
    attrs_config: dict[str, Any],
    on_round: Callable[[int], None] | None,
) -> list[_Driven]:
    """Drive `runs` (episode, look, track index) in lock-step, `LOCKSTEP_RUNS_MAX` at a time, recording each to
    its own shard if asked."""
    driven: list[_Driven] = []
    for start in range(0, len(runs), LOCKSTEP_RUNS_MAX):
        driven += _drive_in_lockstep(driver, config, tracks, runs[start : start + LOCKSTEP_RUNS_MAX], record, attrs_config, on_round)
    return driven


def _drive_in_lockstep(
    driver: Any,
    config: EvalConfig,
    tracks: list[Track],
    runs: Sequence[tuple[int, int, int]],
    record: Path | None,
    attrs_config: dict[str, Any],
    on_round: Callable[[int], None] | None,
) -> list[_Driven]:
    batch_driver = driver if hasattr(driver, "act_batch") else PerWorld(driver)
    episodes: list[Episode] = []
    writers: list[tuple[ShardWriter, dict[str, Any]]] = []
    scenes: dict[int, Scene] = {}  # a track's looks share its scene (tens of MB, a fifth of a second to build)
    try:
        for episode, look, i in runs:
            if i not in scenes:
                scenes[i] = build_scene(tracks[i])
            episodes.append(_track_episode(episode, i, look, tracks[i], batch_driver, config, record, attrs_config, writers, scenes[i]))
        del scenes  # the views hold what they use
        run_batched(episodes, batch_driver, on_round=on_round)
        shards: dict[int, ShardInfo] = {}
        for writer, info in writers:
            writer.end_episode(info)
            shards[info["episode"]] = writer.close()
    except BaseException:
        for writer, _ in writers:
            writer.abort()  # never leave a half-written shard; closed ones stay valid
        raise
    return [_Driven(e.episode, e.recorder.trace(), shards.get(e.episode)) for e in episodes]


def evaluate(
    driver: Any,
    config: EvalConfig,
    record: Path | None = None,
    name: str = "policy",
    progress: bool = False,
    workers: int = 1,
) -> Evaluation:
    """Drive every track of `config.tracks` with `driver` (a Driver, or a batch driver such as PolicyDriver).

    With `workers` > 1 the runs are shared out to that many processes, each driving its share in lock-step
    with its own copy of `driver` (which must pickle) and torch on cores / workers threads. The same
    `workers` on the same machine gives the same bytes; a network's outputs depend in their last bits on
    batch size and thread count, so a different `workers` may steer a network's runs apart slightly.
    An expert-driven evaluation is the same for any `workers`.
    """
    from tqdm import tqdm

    tracks = load_tracks(config.tracks)
    if workers < 1:
        raise EvaluationError("workers must be at least 1")
    evaluated = DriverKind(driver.kind)
    runs_to_drive = [(look, i, track) for look in range(config.looks) for i, track in enumerate(tracks)]
    runs = [(episode, look, i) for episode, (look, i, _) in enumerate(runs_to_drive)]
    expected = [config.laps * track.length / (0.9 * config.expert.max_speed * config.car.dt) for _, _, track in runs_to_drive]
    attrs_config = to_dict(config)
    with _recording_alone(record) as made_for_record:
        groups = split_runs(expected, workers)
        bar = tqdm(total=int(sum(expected)), unit="frame", desc=f"eval {name}", disable=not progress, dynamic_ncols=True)
        try:
            if len(groups) == 1:
                driven = _drive(driver, config, tracks, runs, record, attrs_config, bar.update)
            else:
                driven = _drive_in_processes(driver, config, [[runs[r] for r in group] for group in groups], record, attrs_config, bar)
        except BaseException:
            if record is not None:  # a failed run is no recording: drop its finished shards, and what a killed process left
                for episode, _, _ in runs:
                    Path(record, shard_name(episode)).unlink(missing_ok=True)
                    Path(record, shard_name(episode) + TMP_SUFFIX).unlink(missing_ok=True)
                remove_empty_folders(made_for_record)
            raise
        finally:
            bar.close()
        driven.sort(key=lambda d: d.episode)
        if record is not None:
            shards = [d.shard for d in driven if d.shard is not None]
            write_manifest(record, shards, attrs_config, {"seed": config.seed}, {"driver": name, "kind": "evaluation"})

    dt, takeover = config.car.dt, config.interventions.enabled
    track_runs = []
    for (look, _, track), result in zip(runs_to_drive, driven, strict=True):
        trace = result.trace
        metrics = closed_loop_metrics(trace, dt, evaluated, laps=lap_flags(trace, track.length), takeover=takeover)
        track_runs.append(TrackRun(track, trace, metrics, look, config.looks))
    overall = combine([r.metrics for r in track_runs], [r.trace for r in track_runs], dt, evaluated, takeover)
    lane_counts = sorted({r.track.lanes for r in track_runs})
    by_lanes = {}
    if len(lane_counts) > 1:
        for lanes in lane_counts:
            runs = [r for r in track_runs if r.track.lanes == lanes]
            by_lanes[lanes] = combine([r.metrics for r in runs], [r.trace for r in runs], dt, evaluated, takeover)
    # How it ran, kept with the results: a network's outputs differ in their last bits with batch and threads.
    return Evaluation(name, track_runs, overall, {**attrs_config, "processes": len(groups), "lockstep_runs": LOCKSTEP_RUNS_MAX}, by_lanes)


# ---------------------------------------------------------------- worker processes
def check_new_recording_folder(record: Path | str | None) -> None:
    """EvaluationError unless `record` (--record) is absent or an empty folder: an evaluation records into a
    folder of its own. Worth asking before a network is loaded; `evaluate` asks again while it holds the folder."""
    if record is not None and Path(record).is_dir() and any(Path(record).iterdir()):
        raise EvaluationError(f"{record} already exists and is not empty; --record needs a new folder")


@contextmanager
def _recording_alone(record: Path | None) -> Iterator[list[Path]]:
    """Make the new, empty --record folder `record` (if any) and hold it alone while the runs write it; yields
    the folders made for it, for a failed run to remove. A second eval into the same folder is refused before
    it writes or removes anything: its clean-up would take the first one's shards for its own."""
    if record is None:
        yield []
        return
    made = missing_folders(record)
    Path(record).mkdir(parents=True, exist_ok=True)
    with ExitStack() as holding:
        try:
            holding.enter_context(writing_alone(record, "--record"))
            check_new_recording_folder(record)
        except FolderInUse:
            raise  # the folder is the other run's, made by it or by us
        except BaseException:
            remove_empty_folders(made)
            raise
        yield made


def _drive_in_worker(driver: Any, config: EvalConfig, runs: list[tuple[int, int, int]], record: Path | None, attrs_config: dict[str, Any]) -> list[_Driven]:
    if "torch" in sys.modules:  # a spawned worker imported torch only now, unpickling the network driver
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    pending = [0]

    def report(frames: int) -> None:
        if stop_requested():
            raise EvaluationError("stopped: another evaluation process failed")
        pending[0] += frames
        if pending[0] >= 200:  # a queue message per lock-step round would cost more than it tells
            report_progress(pending[0])
            pending[0] = 0

    driven = _drive(driver, config, load_tracks(config.tracks), runs, record, attrs_config, report)
    report_progress(pending[0])
    return driven


def _drive_in_processes(driver: Any, config: EvalConfig, groups: list[list[tuple[int, int, int]]], record: Path | None, attrs_config: dict[str, Any], bar: Any) -> list[_Driven]:
    driven: list[_Driven] = []
    threads = max(1, usable_cores() // len(groups))  # every process's threads share the cores
    try:
        run_in_workers(_drive_in_worker, [(driver, config, group, record, attrs_config) for group in groups], len(groups), threads, bar,
                       lambda _, result: driven.extend(result))
    except BrokenProcessPool:
        raise EvaluationError(WORKER_DIED) from None
    return driven
