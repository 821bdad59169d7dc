"""The closed loop: world, cameras, driver, expert and recorder meet here, and only here.

Each step, in this order: the cameras render the current state; the expert
labels it; whoever is in control (the driver, or the expert during an
intervention) chooses the controls; one record (frames, label, applied
controls, state, events) goes to the recorder; the episode ends if a stop
condition holds; otherwise the world advances under the controls. So frame
t, its label and its state all describe the same instant.

`Episode` runs one episode a step at a time, so that several episodes can
advance in lock-step and a network can drive them all with one batched
forward pass (see `run_batched`). `run_episode` is the plain loop.

Interventions (`InterventionConfig`): while the driver is not the expert,
leaving the safe envelope hands control to the expert (an intervention);
the expert drives back to the lane centre and hands control back once the
car has been settled for `settle_time`. A crash either resets the car onto
the lane centre at the same progress or ends the episode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from drivesim.config import EpisodeConfig, InterventionConfig
from drivesim.drivers.base import Driver, DriverKind
from drivesim.record.schema import Event
from drivesim.sim.car import Controls
from drivesim.sim.world import RoadState, World


class FrameSource(Protocol):
    """Whatever turns the world's current state into camera frames (a camera rig with its scene)."""

    def render(self, world: World) -> Mapping[str, np.ndarray]: ...


class Recorder(Protocol):
    """Whatever keeps the records (a shard writer, a list in a test)."""

    def add_frame(self, record: Mapping[str, Any]) -> None: ...


class BatchDriver(Protocol):
    """A driver that can act for many worlds at once (a network)."""

    kind: DriverKind

    def reset(self, world: World) -> None: ...

    def act_batch(self, worlds: Sequence[World], frames: Sequence[Mapping[str, np.ndarray]]) -> list[Controls]: ...


NO_INTERVENTIONS = InterventionConfig(enabled=False)


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
    crashes: int
    """Crashes seen."""
    interventions: int
    """Times the expert took over from the driver."""
    mean_speed: float
    """Mean speed over the frames [m/s]."""
    max_abs_lateral_offset: float
    """Largest distance from the lane centre [m]."""

    @property
    def crashed(self) -> bool:
        return self.crashes > 0


@dataclass
class Episode:
    """One episode, advanced a step at a time: `frames = observe()`, then `step(driver_controls)` until `done`."""

    world: World
    driver: Driver | BatchDriver
    expert: Driver
    config: EpisodeConfig
    cameras: FrameSource | None = None
    recorder: Recorder | None = None
    episode: int = 0
    """Recorded as `meta/episode`."""
    interventions: InterventionConfig = NO_INTERVENTIONS
    on_step: Callable[[World, Controls], None] | None = None
    """Called after every world step (progress bars, windows)."""

    done: bool = field(default=False, init=False)
    expert_in_control: bool = field(default=False, init=False)
    """True during an intervention (and always when the driver is the expert)."""
    _frames: Mapping[str, np.ndarray] = field(default_factory=dict, init=False)
    _label: Controls | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.driver.reset(self.world)
        if self.expert is not self.driver:
            self.expert.reset(self.world)
        self._pending_events = Event.EPISODE_RESET
        self._settled_for = 0.0
        self._steps = 0
        self._off_road_steps = 0
        self._crashes = 0
        self._interventions = 0
        self._speed_sum = 0.0
        self._max_offset = 0.0
        self._target_progress = min(
            self.config.distance if self.config.distance is not None else np.inf,
            self.config.laps * self.world.track.length if self.config.laps is not None else np.inf,
        )
        self.expert_in_control = self.driver is self.expert

    @property
    def driver_in_control(self) -> bool:
        """The driver (not the expert) chooses this step's controls."""
        return not self.expert_in_control

    def flag(self, events: Event) -> None:
        """Add `events` to the next recorded frame: what the loop cannot see itself, such as a human taking
        the wheel from a network in the interactive window. An INTERVENTION_START counts as an intervention."""
        self._pending_events |= events
        if events & Event.INTERVENTION_START:
            self._interventions += 1

    def observe(self) -> Mapping[str, np.ndarray]:
        """Render this step's frames and take the expert's label; returns the frames for the driver."""
        self._frames = self.cameras.render(self.world) if self.cameras is not None else {}
        self._label = self.expert.act(self.world, self._frames)
        road = self.world.road
        if self.interventions.enabled and self.driver_in_control and self.interventions.violated(road):
            self.expert_in_control = True
            self._settled_for = 0.0
            self._interventions += 1
            self._pending_events |= Event.INTERVENTION_START
        return self._frames

    def step(self, driver_controls: Controls | None = None) -> bool:
        """Record this step and advance the world; `driver_controls` are used while the driver is in control. Returns `done`."""
        assert self._label is not None, "observe() before step()"
        label, world, road = self._label, self.world, self.world.road
        recovering = self.expert_in_control and self.driver is not self.expert
        if self.expert_in_control:
            applied, kind = label, DriverKind.EXPERT
        else:
            if driver_controls is None:
                driver_controls = self.driver.act(world, self._frames)  # type: ignore[union-attr]
            applied, kind = driver_controls, self.driver.kind
        events = self._pending_events | _road_events(road) | (Event.RECOVERING if recovering else 0)
        self._pending_events = Event(0)
        if self.recorder is not None:
            self.recorder.add_frame(make_record(world, self._frames, label, applied, kind, int(events), self.episode))
        self._steps += 1
        self._speed_sum += world.car.speed
        self._off_road_steps += road.off_road
        self._max_offset = max(self._max_offset, abs(road.lateral_offset))
        self._crashes += road.crashed
        self._label = None
        if (road.crashed and (self.config.end_on_crash or self.interventions.on_crash == "end")) or road.progress >= self._target_progress:
            self.done = True
        elif self.config.max_steps is not None and self._steps >= self.config.max_steps:
            self.done = True
        if self.done:
            return True
        if road.crashed:
            self._reset_after_crash()
            return False
        world.step(applied)
        if self.expert_in_control and self.driver is not self.expert:
            settled = self.interventions.settled(world.road)
            self._settled_for = self._settled_for + world.dt if settled else 0.0
            if settled and self._settled_for >= self.interventions.settle_time:  # settle_time 0: the moment it settles
                self.expert_in_control = False
        if self.on_step is not None:
            self.on_step(world, applied)
        return False

    def _reset_after_crash(self) -> None:
        """Put the car back on the lane centre where it crashed, keeping progress and time."""
        self.world.respawn()
        self._pending_events |= Event.EPISODE_RESET
        self.expert_in_control = self.driver is self.expert
        self._settled_for = 0.0

    def result(self) -> EpisodeResult:
        road = self.world.road
        return EpisodeResult(
            steps=self._steps,
            time=self.world.time,
            progress=road.progress,
            laps=road.laps,
            off_road_steps=self._off_road_steps,
            crashes=self._crashes,
            interventions=self._interventions,
            mean_speed=self._speed_sum / max(self._steps, 1),
            max_abs_lateral_offset=self._max_offset,
        )


def _road_events(road: RoadState) -> Event:
    return (Event.OFF_ROAD if road.off_road else Event(0)) | (Event.CRASH if road.crashed else Event(0))


def make_record(world: World, frames: Mapping[str, np.ndarray], label: Controls, applied: Controls, kind: DriverKind, events: int, episode: int) -> dict[str, Any]:
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
            "meta/driver": int(kind),
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
    interventions: InterventionConfig = NO_INTERVENTIONS,
    on_step: Callable[[World, Controls], None] | None = None,
) -> EpisodeResult:
    """Drive one episode from the world's current (freshly reset) state; `expert` labels every frame."""
    run = Episode(world, driver, expert, config, cameras, recorder, episode, interventions, on_step)
    while not run.done:
        run.observe()
        run.step()
    return run.result()


def run_batched(episodes: Sequence[Episode], driver: BatchDriver, on_round: Callable[[int], None] | None = None) -> list[EpisodeResult]:
    """Advance `episodes` in lock-step; `driver` acts for all those it controls in one batch per step.

    `on_round(frames)` is called after each step of all active episodes (progress bars).
    """
    active = list(episodes)
    while active:
        if on_round is not None:
            on_round(len(active))
        frames = [episode.observe() for episode in active]
        wanted = [i for i, episode in enumerate(active) if episode.driver_in_control]
        controls = driver.act_batch([active[i].world for i in wanted], [frames[i] for i in wanted]) if wanted else []
        chosen: list[Controls | None] = [None] * len(active)
        for i, c in zip(wanted, controls, strict=True):
            chosen[i] = c
        for episode, c in zip(active, chosen, strict=True):
            episode.step(c)
        active = [episode for episode in active if not episode.done]
    return [episode.result() for episode in episodes]
