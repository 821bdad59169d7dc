"""drivesim as a Gymnasium environment: `gymnasium.make("drivesim/Drive-v0")` after `import drivesim.env`.

Needs `pip install gymnasium` (the `gym` extra); the rest of drivesim does not.
"""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    import gymnasium
    from gymnasium import spaces
except ModuleNotFoundError as missing:  # the rest of drivesim runs without it
    raise ModuleNotFoundError("drivesim.env needs gymnasium: pip install gymnasium (or drivesim[gym])", name=missing.name) from None

from drivesim.config import (
    RANDOMIZATION_LEVELS,
    TRACK_WIDTHS,
    CameraConfig,
    CarConfig,
    ExpertConfig,
    RandomizationConfig,
    RigConfig,
    WorldConfig,
)
from drivesim.drivers.expert import ExpertDriver
from drivesim.errors import DrivesimError
from drivesim.render.frame_source import RigView
from drivesim.render.scene import Scene, build_scene
from drivesim.sim.car import Controls
from drivesim.sim.world import World
from drivesim.track import RANDOM_TRACK_SEEDS, Track, generate_track, load_tracks, random_track_config

ENV_ID = "drivesim/Drive-v0"
"""The id `gymnasium.make` knows this environment by once drivesim.env is imported."""
MAX_EPISODE_STEPS = 1000
"""The TimeLimit `gymnasium.make` wraps the environment in unless told `max_episode_steps` (50 s at 20 Hz)."""
LOOKAHEAD = (10.0, 20.0, 30.0)
"""Distances ahead [m] at which the state observation gives the road's curvature."""
STATE_FIELDS = ("lateral_offset", "heading_error", "speed", "curvature", *(f"curvature_{d:g}m" for d in LOOKAHEAD))
"""The state observation, in order: [m], [rad], [m/s], then curvature here and ahead [1/m]."""
SCENES_KEPT = 8
"""Scenes of a track pool's tracks kept built (about 15 MB each), the most recently driven."""


class EnvError(DrivesimError):
    """A DrivingEnv argument, action or call that cannot work."""


class DrivingEnv(gymnasium.Env):
    """Drive procedural tracks from the front camera, with the expert's label for every observation.

    ## Action space
    `Box(-1, 1, (2,), float32)`: `[steering, throttle]`. Steering +1 turns
    fully left (`CarConfig.max_steer`, ROS REP-103 as in recordings);
    throttle +1 accelerates fully, negative values brake. Values outside
    [-1, 1] are clipped; any other shape, NaN or infinity is an error.

    ## Observation space
    - `obs_type="pixels"` (default): `Box(0, 255, (height, width, 3), uint8)`,
      the centre camera's RGB frame, row 0 at the top: the same frames, at
      the same default 160x120, as `images/center` in a recording.
    - `obs_type="state"`: `Box(low, high, (7,), float32)`, see `STATE_FIELDS`:
      lateral offset from the lane centre [m, + = left], heading error (the
      car's yaw minus the road's heading, + = pointing left of the road)
      [rad], speed [m/s], and the road's curvature [1/m, + = bending left]
      here and 10, 20 and 30 m ahead. Nothing is rendered (unless `render`
      is called), so a step costs about a twelfth of a pixel step: for RL
      baselines and tests. The bounds are safe limits (a crash comes first),
      not scales: normalise by running statistics.

    ## Reward
    The progress along the road this step [m] (negative when going
    backwards), minus `crash_penalty` on the step that crashes.

    ## Starting state
    Each `reset` draws, from the environment's random stream
    (`reset(seed=...)` sets it): a track (a fresh procedural one, or one of
    `tracks`), a start anywhere along it, 0.5 m either side of the lane
    centre at most, at the expert's cruising speed there (as `drivesim
    generate` starts its episodes), and a look from `randomize`. A frame's
    sensor noise depends on the episode and the step only, so the same seed
    gives the same frames whether or not earlier ones were rendered.

    ## Episode end
    - terminated: the car crashed (its centre more than
      `WorldConfig.crash_margin` beyond the road edge, or facing the wrong
      way); `step` refuses to go on until `reset`.
    - truncated: by `gymnasium.make`'s TimeLimit after `max_episode_steps`
      (default 1000); by the environment itself after `max_steps` steps or
      `laps` laps, if given.

    ## Info
    Returned by `reset` and `step`, for the observation returned with it:
    `expert_action` (float32 `[steering, throttle]` the expert would apply
    now: the label, for behavioural cloning and DAgger), `lateral_offset`,
    `heading_error`, `speed`, `progress` (signed distance along the road
    since reset [m]), `laps`, `off_road`, `crashed`, `track` (its name) and
    `track_seed` (the seed it was generated from; None for a track file that
    records none).

    ## Arguments
    `tracks`: "random" (a fresh procedural track per episode; a folder
    named so is "./random" or a Path) or a track folder or file, e.g.
    "tracks/train".
    `randomize`: none, light or full. `obs_type`: pixels or state. `width`,
    `height`: camera size [px], 16 to 4096. `max_steps`, `laps`: the
    environment's own episode limits (None = none). `crash_penalty`:
    subtracted from the reward at a crash. `render_mode`: None or
    "rgb_array" (the centre camera's frame). `car`, `world`, `expert`: the
    car's, the world's and the labelling expert's settings.

    ## Version history
    - v0: first version (drivesim 0.2).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": round(1 / CarConfig().dt)}

    def __init__(
        self,
        tracks: str | Path = "random",
        randomize: str = "light",
        obs_type: str = "pixels",
        width: int = 160,
        height: int = 120,
        max_steps: int | None = None,
        laps: float | None = None,
        crash_penalty: float = 100.0,
        render_mode: str | None = None,
        car: CarConfig | None = None,
        world: WorldConfig | None = None,
        expert: ExpertConfig | None = None,
    ) -> None:
        if randomize not in RANDOMIZATION_LEVELS:
            raise EnvError(f"randomize must be none, light or full, got {randomize!r}")
        if obs_type not in ("pixels", "state"):
            raise EnvError(f"obs_type must be pixels or state, got {obs_type!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise EnvError(f"render_mode must be None or rgb_array, got {render_mode!r}")
        for name, value in (("width", width), ("height", height), ("max_steps", max_steps)):
            if not (isinstance(value, numbers.Integral) and not isinstance(value, bool)) and not (name == "max_steps" and value is None):
                raise EnvError(f"{name} must be a whole number, got {value!r}")
        if max_steps is not None and max_steps < 1:
            raise EnvError(f"max_steps must be at least 1, got {max_steps}")
        if laps is not None and not (isinstance(laps, numbers.Real) and math.isfinite(laps) and laps > 0):
            raise EnvError(f"laps must be a finite number above 0, got {laps!r}")
        if not (isinstance(crash_penalty, numbers.Real) and math.isfinite(crash_penalty)):
            raise EnvError(f"crash_penalty must be a finite number, got {crash_penalty!r}")
        self.rig_config = RigConfig(camera=CameraConfig(width=int(width), height=int(height)))
        """The one centre camera the observations and `render` come from."""
        self.randomization = RandomizationConfig.preset(randomize)
        self.obs_type = obs_type
        self.max_steps = max_steps
        self.laps = laps
        self.crash_penalty = float(crash_penalty)
        self.render_mode = render_mode
        self.car_config = car or CarConfig()
        self.world_config = world or WorldConfig()
        self.metadata = {**self.metadata, "render_fps": round(1 / self.car_config.dt)}
        self.pool: list[Track] | None = None if isinstance(tracks, str) and tracks == "random" else load_tracks(tracks)
        """The tracks episodes are drawn from; None = a fresh procedural track per episode."""
        # Its speed profiles keep their tracks alive: as many as can come back, one for fresh tracks.
        self.expert = ExpertDriver(expert or ExpertConfig(), profiles_kept=len(self.pool) if self.pool else 1)
        """Labels every observation (`info["expert_action"]`); never drives."""
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        if obs_type == "pixels":
            self.observation_space = spaces.Box(0, 255, (self.rig_config.camera.height, self.rig_config.camera.width, 3), np.uint8)
        else:
            # A car crashes before its centre is crash_margin beyond an edge, which is at most a road width
            # from its lane's centre, and moves one step at most past that; no track bends tighter than a
            # radius of 4 m (its width).
            lateral = TRACK_WIDTHS[1] + self.world_config.crash_margin + self.car_config.max_speed * self.car_config.dt
            curvature = [1 / TRACK_WIDTHS[0]] * (1 + len(LOOKAHEAD))
            high = np.array([lateral, np.pi, self.car_config.max_speed, *curvature], np.float32)
            low = -high * np.array([1, 1, 0, *[1] * len(curvature)], np.float32)  # speed is never negative
            self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self._scenes: OrderedDict[int, Scene] = OrderedDict()
        """Scenes of the pool's tracks by index, built when first rendered: a scene takes a few tenths of a second."""
        self.world: World | None = None
        self.view: RigView | None = None
        """Renders the world: made when a frame is first needed on a track, so state observations build no scene."""
        self._look_seed = 0
        """Seeds this episode's look and each frame's sensor noise; drawn at every reset whether or not a frame is
        rendered, so the same seed gives the same episodes with pixels, with state, and with `render` called or not."""
        self._frame: np.ndarray | None = None
        """This step's camera frame, once rendered."""

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        rng = self.np_random
        track = self._draw_track(rng)
        if self.world is None or self.world.track is not track:
            self.world = World(track, self.car_config, self.world_config)
            self.view = None
        start, offset = float(rng.uniform(0.0, track.length)), float(rng.uniform(-0.5, 0.5))
        # The expert's cruising speed is read at the start pose, so the car is placed there first.
        self.world.reset(s=start, lateral_offset=offset)
        self.world.reset(s=start, lateral_offset=offset, speed=self.expert.target_speed(self.world))
        self._look_seed = int(rng.integers(2**63))
        if self.view is not None:
            self.view.start_episode(np.random.default_rng(self._look_seed))
        self._frame = None
        return self._observe(), self._info()

    def step(self, action: Sequence[float] | np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.world is None:
            raise EnvError("call reset() before step()")
        if self.world.road.crashed:
            raise EnvError("the episode ended with a crash; call reset()")
        steering, throttle = _action(action)
        before = self.world.road.progress
        road = self.world.step(Controls(steering, throttle).clipped())
        self._frame = None
        reward = road.progress - before - (self.crash_penalty if road.crashed else 0.0)
        truncated = (self.max_steps is not None and self.world.steps >= self.max_steps) or (
            self.laps is not None and road.progress >= self.laps * self.world.track.length)
        return self._observe(), float(reward), road.crashed, bool(truncated and not road.crashed), self._info()

    def render(self) -> np.ndarray | None:
        """The centre camera's frame of the current step (rendered now if the observation is the state)."""
        if self.render_mode is None:
            gymnasium.logger.warn(f"render() without a render_mode does nothing; make the environment with render_mode='rgb_array', e.g. gymnasium.make({ENV_ID!r}, render_mode='rgb_array')")
            return None
        if self.world is None:
            return None
        return self._camera_frame().copy()

    def close(self) -> None:
        if self.view is not None:
            self.view.close()
        self._scenes.clear()
        self.world = self.view = self._frame = None

    def __getstate__(self) -> dict[str, Any]:
        # Scenes hold weak references and are rebuilt on demand: the copy renders the same frames.
        return {**self.__dict__, "view": None, "_scenes": OrderedDict(), "_frame": None}

    # ------------------------------------------------------------------ parts
    def _draw_track(self, rng: np.random.Generator) -> Track:
        """This episode's track: one of the pool, or a fresh one whose seed `info["track_seed"]` gives."""
        if self.pool is None:
            seed = int(rng.integers(*RANDOM_TRACK_SEEDS))
            return generate_track(seed, random_track_config(np.random.default_rng(seed)))
        return self.pool[int(rng.integers(len(self.pool)))]

    def _scene(self, track: Track) -> Scene:
        """`track`'s scene: a pool's tracks keep theirs (the SCENES_KEPT last driven), a fresh track is seen once."""
        if self.pool is None:
            return build_scene(track)
        index = next(i for i, t in enumerate(self.pool) if t is track)
        if index not in self._scenes:
            while len(self._scenes) >= SCENES_KEPT:
                self._scenes.popitem(last=False)
            self._scenes[index] = build_scene(track)
        self._scenes.move_to_end(index)
        return self._scenes[index]

    def _camera_frame(self) -> np.ndarray:
        if self._frame is None:
            if self.view is None:
                self.view = RigView(self.world.track, self.rig_config, self.randomization, self._scene(self.world.track))
                self.view.start_episode(np.random.default_rng(self._look_seed))
            # A child stream per step: a seed [s, 0] would be the look's own seed s again (numpy pads with zeros).
            noise = np.random.default_rng(np.random.SeedSequence(self._look_seed, spawn_key=(self.world.steps,)))
            self._frame = self.view.render(self.world, noise)["center"]
        return self._frame

    def _observe(self) -> np.ndarray:
        if self.obs_type == "pixels":
            return self._camera_frame()
        road, track = self.world.road, self.world.track
        ahead = track.curvature_at(np.asarray(LOOKAHEAD) + road.s)
        return np.array([road.lateral_offset, road.heading_error, self.world.car.speed, road.curvature, *ahead], np.float32)

    def _info(self) -> dict[str, Any]:
        label = self.expert.act(self.world)
        road, track = self.world.road, self.world.track
        return {
            "expert_action": np.array([label.steering, label.throttle], np.float32),
            "lateral_offset": road.lateral_offset,
            "heading_error": road.heading_error,
            "speed": self.world.car.speed,
            "progress": road.progress,
            "laps": road.laps,
            "off_road": road.off_road,
            "crashed": road.crashed,
            "track": track.name,
            "track_seed": track.seed,
        }


def _action(action: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(steering, throttle) from an action, or EnvError for one that is not two finite numbers."""
    values = np.asarray(action)
    if values.shape != (2,) or values.dtype.kind not in "iuf":
        raise EnvError(f"an action is two numbers, [steering, throttle]; got {values.dtype} of shape {values.shape}")
    steering, throttle = (float(v) for v in values)
    if not (math.isfinite(steering) and math.isfinite(throttle)):
        raise EnvError(f"the action must be finite, got {[steering, throttle]}")
    return steering, throttle


gymnasium.register(ENV_ID, entry_point="drivesim.env:DrivingEnv", max_episode_steps=MAX_EPISODE_STEPS)
