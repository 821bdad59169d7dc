"""`run_episode`: the closed loop where world, cameras, driver, expert and recorder meet.

Each step, in this order: the cameras render the current state; the expert
labels it; the driver chooses the controls; one record (frames, label,
applied controls, state, events) goes to the recorder; the episode ends if
a stop condition holds; otherwise the world advances under the controls.
So frame t, its label and its state all describe the same instant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from drivesim.config import check
from drivesim.drivers.base import Driver
from drivesim.sim.car import Controls
from drivesim.sim.world import RoadState, World

OFF_ROAD = 1
CRASH = 2
INTERVENTION_START = 4
RECOVERING = 8
EPISODE_RESET = 16
"""Bit flags of `meta/events` (see docs/data-format.md)."""


class FrameSource(Protocol):
    """Whatever turns the world's current state into camera frames (a camera rig with its scene)."""

    def render(self, world: World) -> Mapping[str, np.ndarray]: ...


class Recorder(Protocol):
    """Whatever keeps the records (a shard writer, a list in a test)."""

    def add_frame(self, record: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class EpisodeConfig:
    """When an episode ends. The first limit reached ends it; at least one must be set."""

    max_steps: int | None = None
    """End after this many steps."""
    laps: float | None = None
    """End once the car has driven this many laps of the track."""
    distance: float | None = None
    """End once the car has driven this far along the road [m]."""
    end_on_crash: bool = True
    """End at the first crash (the crash frame is the episode's last)."""

    def __post_init__(self) -> None:
        check(
            any(v is not None for v in (self.max_steps, self.laps, self.distance)),
            "an episode needs max_steps, laps or distance",
        )
        check(self.max_steps is None or self.max_steps > 0, "episode max_steps must be > 0")
        check(self.laps is None or self.laps > 0, "episode laps must be > 0")
        check(self.distance is None or self.distance > 0, "episode distance must be > 0")


@dataclass
class EpisodeResult:
    """What happened in one episode."""

    steps: int
    """Frames recorded."""
    time: float
    """Simulated duration [s]."""
    progress: float
    """Distance driven along the road [m]."""
    laps: int
    """Completed laps."""
    off_road_steps: int
    """Frames with some corner of the car off the asphalt."""
    crashed: bool
    """The episode saw a crash."""
    mean_speed: float
    """Mean speed over the frames [m/s]."""
    max_abs_lateral_offset: float
    """Largest distance from the lane centre [m]."""


def road_events(road: RoadState) -> int:
    """Event bits that follow from where the car is."""
    return (OFF_ROAD if road.off_road else 0) | (CRASH if road.crashed else 0)


def make_record(world: World, frames: Mapping[str, np.ndarray], label: Controls, applied: Controls, driver: Driver, events: int, episode: int) -> dict[str, Any]:
    """One frame in the recording schema's field names."""
    car, road = world.car, world.road
    record: dict[str, Any] = {f"images/{name}": image for name, image in frames.items()}
    record.update(
        {
            "labels/steering": label.steering,
            "labels/steering_rad": label.steering * world.car_config.max_steer,
            "labels/throttle": label.throttle,
            "controls/steering": applied.steering,
            "controls/throttle": applied.throttle,
            "state/x": car.x,
            "state/y": car.y,
            "state/yaw": car.yaw,
            "state/speed": car.speed,
            "state/lateral_offset": road.lateral_offset,
            "state/heading_error": road.heading_error,
            "state/progress": road.progress,
            "state/curvature": road.curvature,
            "meta/episode": episode,
            "meta/step": world.steps,
            "meta/time": world.time,
            "meta/driver": int(driver.kind),
            "meta/events": events,
        }
    )
    return record


def run_episode(
    world: World,
    driver: Driver,
    expert: Driver,
    config: EpisodeConfig,
    cameras: FrameSource | None = None,
    recorder: Recorder | None = None,
    episode: int = 0,
    on_step: Callable[[World, Controls], None] | None = None,
) -> EpisodeResult:
    """Drive one episode from the world's current (freshly reset) state.

    `expert` labels every frame; when `driver` is the expert itself its
    controls are the label. `on_step` is called after every step (progress bars, windows).
    """
    driver.reset(world)
    if expert is not driver:
        expert.reset(world)
    road = world.road
    events_first = EPISODE_RESET
    speeds: list[float] = []
    off_road_steps = 0
    max_offset = 0.0
    crashed = False
    target_steps = config.max_steps
    target_progress = min(
        config.distance if config.distance is not None else np.inf,
        config.laps * world.track.length if config.laps is not None else np.inf,
    )
    while True:
        frames = cameras.render(world) if cameras is not None else {}
        label = expert.act(world, frames)
        applied = label if driver is expert else driver.act(world, frames)
        events = road_events(road) | events_first
        events_first = 0
        if recorder is not None:
            recorder.add_frame(make_record(world, frames, label, applied, driver, events, episode))
        speeds.append(world.car.speed)
        off_road_steps += road.off_road
        max_offset = max(max_offset, abs(road.lateral_offset))
        crashed = crashed or road.crashed
        if (road.crashed and config.end_on_crash) or road.progress >= target_progress:
            break
        if target_steps is not None and len(speeds) >= target_steps:
            break
        road = world.step(applied)
        if on_step is not None:
            on_step(world, applied)
    return EpisodeResult(
        steps=len(speeds),
        time=world.time,
        progress=road.progress,
        laps=road.laps,
        off_road_steps=off_road_steps,
        crashed=crashed,
        mean_speed=float(np.mean(speeds)),
        max_abs_lateral_offset=max_offset,
    )
