"""`PlaySession`: what the window drives, without the window. No pygame here.

The session owns a world on one track, the drivers (human, autopilot,
network) and the episode loop (`drivesim.loop.Episode`) that labels every
step with the expert. The window turns keys into calls on it (`toggle_*`,
`take_wheel`, `reset`, `new_track`, ...) and calls `step()` once per
simulation step of `CarConfig.dt`.

Who drives: `Mode.HUMAN`, `Mode.AUTOPILOT` (the expert) or `Mode.NETWORK`.
Steering or throttle input from the human while another driver is in
control hands the wheel to the human. Taken from the network, that is an
intervention, recorded with the same events as in `drivesim eval`: the
first human frame carries INTERVENTION_START | RECOVERING, the following
human frames RECOVERING, until the network is given the wheel back.
No automatic expert takeover happens here: the human is the safety driver.
A crash puts the car back on the road at the same progress (EPISODE_RESET).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from drivesim.app.recording import PlayRecorder
from drivesim.config import (
    RANDOMIZATION_LEVELS,
    CameraConfig,
    CarConfig,
    EpisodeConfig,
    ExpertConfig,
    RandomizationConfig,
    RigConfig,
    WorldConfig,
    check,
    to_dict,
)
from drivesim.drivers.base import Driver, DriverKind
from drivesim.drivers.expert import ExpertDriver
from drivesim.drivers.human import HumanConfig, HumanDriver, HumanInput
from drivesim.loop import NO_INTERVENTIONS, Episode
from drivesim.record.schema import Event
from drivesim.render.camera import camera_pose
from drivesim.render.frame_source import RigView
from drivesim.render.rig import CameraRig
from drivesim.render.view import render_view
from drivesim.sim.car import CarState, Controls
from drivesim.sim.world import World
from drivesim.track import RANDOM_TRACK_SEEDS, Track, generate_track, load_track, random_track_config
from drivesim.wording import counted

LEVELS = tuple(RANDOMIZATION_LEVELS)
"""Randomization levels in the order the window cycles through them."""
VIEW_CAMERAS = ("center", "left", "right")
"""Cameras the window can show."""
ENDLESS = EpisodeConfig(max_steps=2**31 - 1, end_on_crash=False)
"""A window episode lasts until the user resets it (meta/step is int32)."""


class Mode(str, Enum):
    """Who is in control."""

    HUMAN = "human"
    AUTOPILOT = "autopilot"
    NETWORK = "network"


@dataclass(frozen=True)
class PlayConfig:
    """Everything `drivesim play` can be told."""

    size: tuple[int, int] = (800, 600)
    """Window size (width, height) [px]; the front camera is rendered at this size."""
    track: str | None = None
    """Track file to drive; None = a random track from `seed`."""
    seed: int = 0
    """Seed of the random track (without `track`), of the looks and of the new tracks drawn with `T`."""
    model: str | None = None
    """Network checkpoint that can drive (`N`)."""
    record: str | None = None
    """Recording folder; recording starts at once. None = `R` records into recordings/play-<time>."""
    record_root: str = "recordings"
    """Where `R` makes a recording folder when `record` is not given."""
    randomization: str = "light"
    """Starting look: none, light or full (cycled with `L`)."""
    driver: Mode | None = None
    """Who drives at the start; None = the network with a model, else the human."""
    max_fps: int = 60
    """Frame-rate cap of the window [frames/s]; 0 = as fast as possible."""
    steps_per_frame: int = 0
    """0 = real time: one simulation step per `car.dt` of wall time, the view interpolated between steps.
    N > 0 = exactly N steps per window frame, whatever the wall time (deterministic: tests, benchmarks)."""
    segment_frames: int = 2400
    """A stretch of recording is cut into episodes (one shard each) of at most this many frames."""
    rig: RigConfig = RigConfig()
    """Cameras recorded (standard 160x120) and seen by the network; with a model, its training camera replaces the camera."""
    car: CarConfig = CarConfig()
    world: WorldConfig = WorldConfig()
    expert: ExpertConfig = ExpertConfig()
    human: HumanConfig = HumanConfig()

    def __post_init__(self) -> None:
        width, height = self.size
        check(320 <= width <= 3840 and 240 <= height <= 2160, "window size must be between 320x240 and 3840x2160")
        check(self.randomization in LEVELS, f"randomization must be one of {', '.join(LEVELS)}")
        check(self.max_fps >= 0 and self.steps_per_frame >= 0, "max_fps and steps_per_frame must be >= 0")
        check(self.segment_frames >= 1, "segment_frames must be at least 1")
        check(self.driver != Mode.NETWORK or self.model is not None, "the network can only drive with a model")


class ControlSwitch:
    """The episode's driver: whichever of human, autopilot and network is in control right now."""

    def __init__(self, drivers: Mapping[Mode, Driver], mode: Mode) -> None:
        self.drivers = dict(drivers)
        self.mode = mode

    @property
    def kind(self) -> DriverKind:
        return self.drivers[self.mode].kind

    def reset(self, world: World) -> None:
        for driver in self.drivers.values():
            driver.reset(world)

    def act(self, world: World, frames: Mapping[str, np.ndarray]) -> Controls:
        return self.drivers[self.mode].act(world, frames)


class OnDemandFrames:
    """The rig's frames when someone needs them (recording, the network), else nothing: rendering costs time."""

    def __init__(self, view: RigView) -> None:
        self.view = view
        self.active = False

    def render(self, world: World) -> dict[str, np.ndarray]:
        return self.view.render(world) if self.active else {}


@dataclass
class StepInfo:
    """The last recorded step, for the HUD."""

    label: Controls = Controls(0.0, 0.0)
    """The expert's controls."""
    applied: Controls = Controls(0.0, 0.0)
    """The controls that moved the car."""
    kind: DriverKind = DriverKind.HUMAN
    events: int = 0


class Trail:
    """Every position since the episode started and who drove there, for the minimap."""

    def __init__(self) -> None:
        self.points: list[tuple[float, float, int]] = []
        """(x [m], y [m], DriverKind) per simulation step."""
        self.generation = 0
        """Counts `clear` calls, so a drawing of the trail knows when to start over."""

    def add(self, x: float, y: float, kind: DriverKind) -> None:
        self.points.append((x, y, int(kind)))

    def clear(self) -> None:
        self.points = []
        self.generation += 1


class PlaySession:
    """A world, its drivers, the labelling loop and the recorder, advanced one step at a time."""

    def __init__(self, config: PlayConfig, policy: Driver | None = None, log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.log = log or (lambda message: None)
        self.policy = policy
        """The network driver (a PolicyDriver), or None."""
        if config.model is not None and policy is None:
            import torch

            from drivesim.drivers.policy import PolicyDriver, rig_seen_by  # torch: only when a model is asked for

            # One frame per forward pass: a second torch thread only adds hand-over latency, and with the
            # renderer busy on the other core its spin-waiting made a small network's step 50x slower.
            torch.set_num_threads(1)
            self.policy = PolicyDriver(config.model)
            # Its frames (and so a recording's) come through the camera the network was trained with.
            self.config = config = replace(config, rig=rig_seen_by(self.policy, config.rig))
        self.input = HumanInput()
        """The human's keys and stick; the window updates it."""
        self.human = HumanDriver(self.input, config.human)
        self.expert = ExpertDriver(config.expert)
        """Labels every frame."""
        drivers: dict[Mode, Driver] = {Mode.HUMAN: self.human, Mode.AUTOPILOT: ExpertDriver(config.expert)}
        if self.policy is not None:
            drivers[Mode.NETWORK] = self.policy
        start = config.driver or (Mode.NETWORK if self.policy is not None else Mode.HUMAN)
        self.switch = ControlSwitch(drivers, start)
        self.level = config.randomization
        """Current randomization level."""
        self.intervening = False
        """The human took the wheel from the network and has not handed it back."""
        self.takeovers = 0
        """Interventions in this session."""
        self.steps = 0
        """Simulation steps in this session."""
        self.last = StepInfo()
        self.trail = Trail()
        self.message = ""
        """A short notice for the window (what just happened)."""
        self.message_time = 0.0
        self._takeover_pending = False
        self._look_rng = np.random.default_rng([config.seed, 1])
        self._track_rng = np.random.default_rng([config.seed, 2])
        self._display_rng = np.random.default_rng([config.seed, 3])
        self.recorder: PlayRecorder | None = None
        self._record_folder = Path(config.record) if config.record else None
        if self._record_folder is not None:
            self._make_recorder(self._record_folder)  # a folder that cannot be used fails before any window opens
        track = load_track(config.track) if config.track else generate_track(config.seed, random_track_config(np.random.default_rng(config.seed)))
        self._set_track(track)
        if self.recorder is not None:
            self._start_stretch()
            self.log(f"recording to {self.recorder.folder}")

    # ------------------------------------------------------------------ state
    @property
    def mode(self) -> Mode:
        return self.switch.mode

    @property
    def recording(self) -> bool:
        return self.recorder is not None and self.recorder.recording

    @property
    def record_folder(self) -> Path | None:
        return self.recorder.folder if self.recorder is not None else None

    @property
    def has_network(self) -> bool:
        return self.policy is not None

    def notify(self, message: str) -> None:
        self.message, self.message_time = message, time.monotonic()
        self.log(message)

    # ------------------------------------------------------------------ track and episodes
    def _set_track(self, track: Track) -> None:
        self.track = track
        self.world = World(track, self.config.car, self.config.world)
        self.view = RigView(track, self.config.rig, RandomizationConfig.preset(self.level))
        self.frames = OnDemandFrames(self.view)
        self._start_episode()

    def _start_episode(self) -> None:
        """Car on the start line at rest, a fresh look, a fresh episode of the loop."""
        self.world.reset()
        self.view.randomization = RandomizationConfig.preset(self.level)
        self.look = self.view.start_episode(self._look_rng)
        self.episode = Episode(self.world, self.switch, self.expert, ENDLESS, self.frames, self, 0, NO_INTERVENTIONS, self._after_step)
        self.prev_car = self.world.car
        self.intervening = self._takeover_pending = False  # a takeover ends with its episode; the human keeps the wheel
        self.trail.clear()
        self.trail.add(self.world.car.x, self.world.car.y, self.switch.kind)

    def _restart(self, change: Callable[[], None]) -> None:
        """End the recorded stretch, apply `change` (new track, new look, reset), and record on if we were."""
        was_recording = self.recording
        self._stop_stretch()
        change()
        if was_recording:
            self._start_stretch()

    def reset(self) -> None:
        """Back to the start line."""
        self._restart(self._start_episode)
        self.notify("reset to the start line")

    def new_track(self) -> None:
        """A fresh random track."""
        seed = int(self._track_rng.integers(*RANDOM_TRACK_SEEDS))
        track = generate_track(seed, random_track_config(np.random.default_rng(seed)))
        self._restart(lambda: self._set_track(track))
        self.notify(f"new track {track.name}: {track.length:.0f} m, {counted(track.lanes, 'lane')}")

    def cycle_randomization(self) -> None:
        """Next randomization level (none, light, full), with a freshly drawn look."""
        self.level = LEVELS[(LEVELS.index(self.level) + 1) % len(LEVELS)]

        def relook() -> None:
            self.view.randomization = RandomizationConfig.preset(self.level)
            self.look = self.view.start_episode(self._look_rng)

        self._restart(relook)
        self.notify(f"randomization {self.level}")

    # ------------------------------------------------------------------ who drives
    def set_mode(self, mode: Mode) -> None:
        if mode == Mode.NETWORK and self.policy is None:
            self.notify("no network to drive: start with --model PATH")
            return
        if mode == self.mode:
            return
        if mode == Mode.HUMAN:
            self.human.take_over(self.last.applied)
        if mode != Mode.HUMAN:
            self.intervening = self._takeover_pending = False
        self.switch.mode = mode
        self.notify(f"{mode.value} drives")

    def toggle_autopilot(self) -> None:
        self.set_mode(Mode.HUMAN if self.mode == Mode.AUTOPILOT else Mode.AUTOPILOT)

    def toggle_network(self) -> None:
        """Give the network the wheel (also back after a takeover), or take it away."""
        self.set_mode(Mode.HUMAN if self.mode == Mode.NETWORK else Mode.NETWORK)

    def take_wheel(self) -> None:
        """The human steered, accelerated or braked: the human drives now. From the network, that is an intervention."""
        if self.mode == Mode.HUMAN:
            return
        if self.mode == Mode.NETWORK:
            self.intervening = self._takeover_pending = True
            self.takeovers += 1
        self.human.take_over(self.last.applied)
        self.switch.mode = Mode.HUMAN
        self.notify("human took over from the network: intervention" if self.intervening else "human drives")

    # ------------------------------------------------------------------ recording
    def _make_recorder(self, folder: Path) -> None:
        config = {
            "kind": "play",
            "seed": self.config.seed,
            "track": self.config.track,
            "model": self.config.model,
            "rig": to_dict(self.config.rig),
            "car": to_dict(self.config.car),
            "world": to_dict(self.config.world),
            "expert": to_dict(self.config.expert),
            "human": to_dict(self.config.human),
        }
        intrinsics = CameraRig(self.config.rig).intrinsics()
        shapes = {name: (self.config.rig.camera.height, self.config.rig.camera.width) for name in self.config.rig.cameras}
        self.recorder = PlayRecorder(folder, shapes, config, intrinsics, {"seed": self.config.seed}, self.config.segment_frames, self.log)

    def toggle_recording(self) -> None:
        if self.recording:
            self._stop_stretch()
            self.notify(f"recording paused: {self.recorder.frames} frames in {self.recorder.folder}")
            return
        if self.recorder is None:
            folder = self._record_folder or Path(self.config.record_root) / time.strftime("play-%Y%m%d-%H%M%S")
            self._make_recorder(folder)
        self._start_stretch()
        self.notify(f"recording to {self.recorder.folder}")

    def _start_stretch(self) -> None:
        assert self.recorder is not None
        track = self.track
        info = {"track": track.name, "track_seed": track.seed, "source": "play", "randomization": self.level, **self.look}
        self.episode.episode = self.recorder.start(info)

    def _stop_stretch(self) -> None:
        if self.recorder is not None:
            self.recorder.stop()

    def close(self) -> None:
        """End of the session, however it ends: the open stretch is completed, or deleted if it cannot be."""
        if self.recorder is not None:
            self.recorder.finish()

    # ------------------------------------------------------------------ the loop
    def add_frame(self, record: Mapping[str, Any]) -> None:
        """The episode loop's recorder: keeps the step for the HUD and passes it on while recording."""
        self.last = StepInfo(
            Controls(record["labels/steering"], record["labels/throttle"]),
            Controls(record["controls/steering"], record["controls/throttle"]),
            DriverKind(record["meta/driver"]),
            int(record["meta/events"]),
        )
        if self.recorder is not None:
            self.recorder.add_frame(record)

    def _after_step(self, world: World, applied: Controls) -> None:
        self.trail.add(world.car.x, world.car.y, self.last.kind)

    def step(self) -> None:
        """One simulation step: frames, label, controls of whoever drives, record, world step."""
        self.frames.active = self.recording or self.mode == Mode.NETWORK
        self.prev_car = self.world.car
        self.episode.observe()
        if self.mode == Mode.HUMAN and self.intervening:
            self.episode.flag(Event.RECOVERING | (Event.INTERVENTION_START if self._takeover_pending else Event(0)))
            self._takeover_pending = False
        self.episode.step()
        self.steps += 1
        if self.recorder is not None and self.recorder.segment_full:
            self._stop_stretch()
            self._start_stretch()
        if self.episode.done:
            self.reset()

    # ------------------------------------------------------------------ the view
    def display_camera(self, size: tuple[int, int]) -> CameraConfig:
        """The rig's camera at the window's size, with this episode's mounting jitter."""
        width, height = size
        return self.view.appearance.apply_to_camera(replace(self.config.rig.camera, width=width, height=height))

    def render_view(self, camera: CameraConfig, name: str = "center", alpha: float = 1.0) -> np.ndarray:
        """The front view at `camera`'s size, from camera `name`, `alpha` of the way from the previous step's pose to this one's."""
        car = interpolate(self.prev_car, self.world.car, alpha)
        shift = {"center": 0.0, "left": 1.0, "right": -1.0}[name] * self.config.rig.side_offset
        return render_view(self.view.scene, camera, camera_pose(car, camera, shift), self.view.appearance, self._display_rng)


def interpolate(a: CarState, b: CarState, alpha: float) -> CarState:
    """The pose `alpha` of the way from `a` to `b` (yaw the short way round); `b` itself when they are far apart (a reset)."""
    if alpha >= 1.0 or math.hypot(b.x - a.x, b.y - a.y) > 5.0:
        return b
    alpha = max(0.0, alpha)
    dyaw = math.remainder(b.yaw - a.yaw, math.tau)
    return CarState(a.x + alpha * (b.x - a.x), a.y + alpha * (b.y - a.y), a.yaw + alpha * dyaw, a.speed + alpha * (b.speed - a.speed), b.steer)
