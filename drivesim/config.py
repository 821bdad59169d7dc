"""Typed configuration for every knob in drivesim.

Each dataclass documents its fields with units. `from_dict` builds a config
from plain data (JSON, a user's config file) and rejects unknown keys and
wrong types, so a typo is an error instead of a silent default. `to_dict`
gives the plain data back; configs are stored in shard and track files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from drivesim.errors import DrivesimError

if TYPE_CHECKING:  # only for annotations: sim imports config
    from drivesim.sim.world import RoadState


class ConfigError(DrivesimError, ValueError):
    """A configuration value or file is invalid."""


def check(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless `condition` holds; for config validation."""
    if not condition:
        raise ConfigError(message)


MAX_LAPS = 1000
"""Most laps of each track an evaluation drives: a bound that keeps `--laps inf` a clear error."""
MIN_LAPS = 0.01
"""Fewest laps of each track an evaluation drives: 5-30 m of the bundled tracks; far fewer drove no distance to score."""

TRACK_WIDTHS = (4.0, 20.0)
"""Smallest and largest road width of any track, generated or loaded, edge line to edge line [m]."""


@dataclass(frozen=True)
class TrackConfig:
    """How the procedural track generator shapes a road."""

    length: float = 1200.0
    """Approximate centreline length [m]; the generated loop is within ~15% of it."""
    width: float = 8.0
    """Road width, edge line to edge line [m]."""
    lanes: int = 1
    """1 or 2 lanes; with 2 a dashed centre line is drawn and the car keeps right."""
    curviness: float = 0.5
    """0 (a near-circle) to 1 (many sharp bends)."""
    min_radius: float = 20.0
    """No curve of the centreline is tighter than this [m]."""
    verge_clearance: float = 6.0
    """Free ground kept between non-neighbouring parts of the road [m]."""

    def __post_init__(self) -> None:
        check(200.0 <= self.length <= 5000.0, "track length must be in [200, 5000] m")
        check(TRACK_WIDTHS[0] <= self.width <= TRACK_WIDTHS[1], f"track width must be in [{TRACK_WIDTHS[0]:g}, {TRACK_WIDTHS[1]:g}] m")
        check(self.lanes in (1, 2), "track lanes must be 1 or 2")
        check(0.0 <= self.curviness <= 1.0, "track curviness must be in [0, 1]")
        check(self.min_radius >= self.width, "track min_radius must be at least the road width")
        check(self.verge_clearance >= 0.0, "track verge_clearance must be >= 0")


@dataclass(frozen=True)
class CarConfig:
    """Kinematic bicycle model of the ego car."""

    wheelbase: float = 2.6
    """Distance between front and rear axle [m]."""
    length: float = 4.4
    """Body length, for the off-road footprint [m]."""
    width: float = 1.8
    """Body width, for the off-road footprint [m]."""
    max_steer: float = 0.5
    """Maximum front-wheel angle [rad]; steering 1.0 maps to this."""
    max_steer_rate: float = 1.2
    """How fast the front wheels can turn [rad/s]."""
    max_accel: float = 4.0
    """Acceleration at full throttle [m/s^2]."""
    max_brake: float = 8.0
    """Deceleration at full brake [m/s^2]."""
    max_speed: float = 25.0
    """Top speed [m/s]."""
    drag: float = 0.02
    """Rolling and air resistance: deceleration per unit speed [1/s]."""
    dt: float = 0.05
    """Fixed simulation time step [s]."""

    def __post_init__(self) -> None:
        check(self.wheelbase > 0 and self.length >= self.wheelbase, "car length must be >= wheelbase > 0")
        check(0 < self.max_steer < 1.2, "car max_steer must be in (0, 1.2) rad")
        check(self.max_steer_rate > 0, "car max_steer_rate must be > 0")
        check(self.max_accel > 0 and self.max_brake > 0, "car max_accel and max_brake must be > 0")
        check(0 < self.max_speed <= 100, "car max_speed must be in (0, 100] m/s")
        check(0 <= self.drag <= 10, "car drag must be in [0, 10] 1/s")
        check(0 < self.dt <= 0.2, "car dt must be in (0, 0.2] s")

    @property
    def min_turn_radius(self) -> float:
        """Tightest radius the car can drive [m]."""
        return self.wheelbase / math.tan(self.max_steer)


@dataclass(frozen=True)
class WorldConfig:
    """When the world calls the car off-road or crashed."""

    crash_margin: float = 2.0
    """The car crashes when its centre is this far beyond the road edge [m]."""
    wrong_way_angle: float = 1.75
    """The car crashes when its heading differs from the road's by more than this [rad]."""

    def __post_init__(self) -> None:
        check(0 < self.crash_margin <= 50, "world crash_margin must be in (0, 50] m")
        check(0 < self.wrong_way_angle <= math.pi, "world wrong_way_angle must be in (0, pi] rad")


@dataclass(frozen=True)
class ExpertConfig:
    """The privileged pure-pursuit expert that labels every frame."""

    lookahead_min: float = 4.0
    """Pure-pursuit look-ahead distance at standstill [m]."""
    lookahead_time: float = 0.45
    """Look-ahead grows with speed by this many seconds of travel [s]."""
    max_speed: float = 14.0
    """Cruise speed on straights [m/s].

    `PolicyDriver` cruises at this speed too, on purpose: pure pursuit looks
    further ahead the faster it goes, so labels made at 20 m/s answer a
    lateral offset with 0.7 times the steering the network needs at 14 m/s,
    and a network trained on them drifts (models/README.md)."""
    max_lateral_accel: float = 4.0
    """Speed in bends is limited so v^2 * curvature stays below this [m/s^2]."""
    comfort_brake: float = 3.0
    """Deceleration the speed profile plans with before a bend [m/s^2]."""
    speed_gain: float = 0.5
    """Throttle per m/s of speed error [1/(m/s)]."""

    def __post_init__(self) -> None:
        check(self.lookahead_min > 0 and self.lookahead_time >= 0, "expert look-ahead must be positive")
        check(self.max_speed > 0 and self.max_lateral_accel > 0, "expert speeds must be positive")
        check(self.comfort_brake > 0 and self.speed_gain > 0, "expert gains must be positive")


@dataclass(frozen=True)
class NoiseConfig:
    """DART-style noise added to the executed controls, never to the label."""

    steering_std: float = 0.0
    """Standard deviation of the steering noise, normalized units [-]."""
    throttle_std: float = 0.0
    """Standard deviation of the throttle noise, normalized units [-]."""
    correlation_time: float = 0.5
    """Noise is an Ornstein-Uhlenbeck process with this time constant [s]."""

    def __post_init__(self) -> None:
        check(0 <= self.steering_std <= 1 and 0 <= self.throttle_std <= 1, "noise std must be in [0, 1]")
        check(0 < self.correlation_time <= 60, "noise correlation_time must be in (0, 60] s")

    @property
    def enabled(self) -> bool:
        return self.steering_std > 0 or self.throttle_std > 0


@dataclass(frozen=True)
class CameraConfig:
    """A pinhole camera mounted on the car, looking ahead."""

    width: int = 160
    """Image width [px]."""
    height: int = 120
    """Image height [px]."""
    fov: float = 1.40
    """Horizontal field of view [rad] (1.40 rad is about 80 degrees)."""
    mount_height: float = 1.40
    """Height of the lens above the ground [m]."""
    pitch: float = 0.10
    """Downward tilt below the horizontal [rad]."""
    forward_offset: float = 0.6
    """Lens position ahead of the car's centre [m]."""
    lateral_offset: float = 0.0
    """Lens position left of the car's centre line [m]."""
    yaw_offset: float = 0.0
    """Camera yaw relative to the car, positive = looking left [rad]."""

    def __post_init__(self) -> None:
        check(16 <= self.width <= 4096 and 16 <= self.height <= 4096, "camera width and height must be in [16, 4096] px")
        check(0.2 <= self.fov <= 2.8, "camera fov must be in [0.2, 2.8] rad")
        check(0.2 <= self.mount_height <= 5.0, "camera mount_height must be in [0.2, 5] m")
        check(-0.3 <= self.pitch <= 0.8, "camera pitch must be in [-0.3, 0.8] rad")
        check(-5 <= self.forward_offset <= 5 and -5 <= self.lateral_offset <= 5, "camera forward_offset and lateral_offset must be in [-5, 5] m")
        check(-math.pi <= self.yaw_offset <= math.pi, "camera yaw_offset must be in [-pi, pi] rad")

    def describe(self) -> str:
        """The camera in a few words, for messages."""
        return f"{self.width}x{self.height} px, fov {self.fov:g} rad, {self.mount_height:g} m high, pitch {self.pitch:g} rad"

    def differences(self, other: CameraConfig) -> str:
        """The fields in which `other` differs from this camera, as "name this vs other", for messages."""
        return ", ".join(f"{f.name} {getattr(self, f.name):g} vs {getattr(other, f.name):g}"
                         for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(other, f.name))


@dataclass(frozen=True)
class RigConfig:
    """Which cameras the car carries. Left and right ones are PilotNet's recovery cameras."""

    cameras: tuple[str, ...] = ("center",)
    """Camera names: center, with left and right or without them."""
    side_offset: float = 0.8
    """Sideways distance of the left/right cameras from the centre camera [m]."""
    camera: CameraConfig = CameraConfig()
    """Intrinsics and mounting shared by every camera of the rig."""

    def __post_init__(self) -> None:
        check_camera_names(self.cameras, "rig cameras")
        check(0 <= self.side_offset <= 3, "rig side_offset must be in [0, 3] m")


def check_track_source(tracks: str) -> None:
    """ConfigError unless `tracks` is "random" or may name track files: "Random" is the keyword mistyped (unless
    a folder of that name is there)."""
    check(bool(tracks), "tracks must be random or a track folder/file")
    check(tracks == "random" or tracks.lower() != "random" or Path(tracks).exists(),
          f"tracks {tracks!r}: for a fresh procedural track per shard, write random (lower case)")


def check_camera_names(names: typing.Sequence[str], what: str) -> None:
    """ConfigError, naming `what` (an option or a field), unless `names` is center with left and right or
    without them, each once. The centre camera is the one a network drives with, validates on and `inspect`
    shows; left and right are recovery views beside it."""
    check(bool(names) and "center" in names and set(names) <= {"center", "left", "right"},
          f"{what} must name center, and may add left and right, got {', '.join(map(repr, names)) or 'none'}")
    # A repeated camera would be recorded twice, and be two samples of every frame in training.
    check(len(set(names)) == len(names), f"{what} names a camera more than once: {', '.join(map(repr, names))}")


RANDOMIZATION_LEVELS = {"none": 0.0, "light": 0.4, "full": 1.0}
"""How much of each effect's full range a randomization level uses [-]."""


@dataclass(frozen=True)
class RandomizationConfig:
    """Per-episode domain randomization of the camera frames.

    `level` scales every effect: `none` renders the fixed reference look,
    `light` draws from narrow ranges, `full` from the widest a real road
    camera would see. Each effect can be switched off on its own; the
    sampled episode parameters are recorded in the shard attributes.
    """

    level: str = "none"
    """none, light or full."""
    lighting: bool = True
    """Vary light level, colour temperature, contrast and sky."""
    surfaces: bool = True
    """Vary asphalt, verge and grass palettes and texture strength."""
    markings: bool = True
    """Vary lane-marking colour, width, dash length and wear."""
    shadows: bool = True
    """Cast roadside trees' shadows across the road."""
    haze: bool = True
    """Vary haze/fog that thickens with distance."""
    camera: bool = True
    """Jitter camera mounting height, pitch and field of view."""
    sensor: bool = True
    """Add mild sensor noise and lens blur."""
    max_height_jitter: float = 0.15
    """Largest change of the camera mounting height at level full [m]."""
    max_pitch_jitter: float = 0.03
    """Largest change of the camera pitch at level full [rad]."""
    max_fov_jitter: float = 0.08
    """Largest change of the horizontal field of view at level full [rad]."""
    max_noise: float = 3.0
    """Largest sensor-noise standard deviation at level full [8-bit counts]."""
    max_blur: float = 0.8
    """Largest Gaussian lens-blur sigma at level full [px]."""

    def __post_init__(self) -> None:
        check(self.level in RANDOMIZATION_LEVELS, f"randomization level must be one of {', '.join(RANDOMIZATION_LEVELS)}")
        check(0 <= self.max_height_jitter <= 0.5, "randomization max_height_jitter must be in [0, 0.5] m")
        check(0 <= self.max_pitch_jitter <= 0.1, "randomization max_pitch_jitter must be in [0, 0.1] rad")
        check(0 <= self.max_fov_jitter <= 0.3, "randomization max_fov_jitter must be in [0, 0.3] rad")
        # A real camera's read noise is a few counts; more would teach the network to ignore texture.
        check(0 <= self.max_noise <= 8, "randomization max_noise must be in [0, 8] counts")
        check(0 <= self.max_blur <= 2, "randomization max_blur must be in [0, 2] px")

    @classmethod
    def preset(cls, level: str) -> RandomizationConfig:
        """Every effect on, at `level` (none, light or full)."""
        return cls(level=level)

    @property
    def strength(self) -> float:
        """Fraction of each effect's full range this level uses [-]."""
        return RANDOMIZATION_LEVELS[self.level]


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
    """End at the first crash (the crash frame is the episode's last) instead of applying `InterventionConfig.on_crash`."""

    def __post_init__(self) -> None:
        check(any(v is not None for v in (self.max_steps, self.laps, self.distance)), "an episode needs max_steps, laps or distance")
        check(self.max_steps is None or self.max_steps > 0, "episode max_steps must be > 0")
        check(self.laps is None or self.laps > 0, "episode laps must be > 0")
        check(self.distance is None or self.distance > 0, "episode distance must be > 0")


@dataclass(frozen=True)
class InterventionConfig:
    """When the expert takes the wheel from a driver, and when it gives it back."""

    enabled: bool = True
    """Without interventions the driver keeps control until the episode ends (use with end_on_crash)."""
    max_lateral_offset: float = 1.5
    """Intervene beyond this distance from the lane centre [m]."""
    max_heading_error: float = 0.5
    """Intervene beyond this angle to the road [rad]."""
    on_off_road: bool = True
    """Intervene as soon as a corner of the car's body leaves the asphalt."""
    settle_offset: float = 0.3
    """The car counts as settled within this distance of the lane centre [m]..."""
    settle_heading: float = 0.1
    """...and within this angle to the road [rad]..."""
    settle_time: float = 1.0
    """...for this long, after which the expert hands back control [s]."""
    on_crash: str = "reset"
    """After a crash: reset (car placed on the lane centre at the same progress) or end (the episode stops)."""

    def __post_init__(self) -> None:
        check(self.max_lateral_offset > self.settle_offset > 0, "intervention offsets must satisfy max_lateral_offset > settle_offset > 0")
        check(self.max_heading_error > self.settle_heading > 0, "intervention headings must satisfy max_heading_error > settle_heading > 0")
        check(self.settle_time >= 0, "settle_time must be >= 0")
        check(self.on_crash in ("reset", "end"), "on_crash must be reset or end")

    def violated(self, road: RoadState) -> bool:
        """The car has left the safe envelope."""
        return (
            abs(road.lateral_offset) > self.max_lateral_offset
            or abs(road.heading_error) > self.max_heading_error
            or (self.on_off_road and road.off_road)
            or road.crashed
        )

    def settled(self, road: RoadState) -> bool:
        return abs(road.lateral_offset) < self.settle_offset and abs(road.heading_error) < self.settle_heading


MAX_SHARDS = 100_000
"""Most shards in one recording: shard files are numbered with five digits."""
EPISODES_PER_SHARD_MAX = 1000
"""Most episodes in one shard: episode ids are shard * 1000 + k, unique in a recording."""


@dataclass(frozen=True)
class GenerateConfig:
    """A headless data-generation run: what `drivesim generate` makes. Stored in every shard and the manifest."""

    frames: int = 10_000
    """Frames in the whole recording."""
    seed: int = 0
    """Run seed; shard i draws everything from (seed, i)."""
    tracks: str = "random"
    """random (a fresh track per shard) or a folder/file of track JSON files."""
    shard_frames: int = 1000
    """Frames per shard; the last shard holds the remainder."""
    episode_frames: int = 400
    """Longest episode [frames]; an episode also ends at a crash or where its shard is full."""
    rig: RigConfig = RigConfig()
    """Cameras recorded."""
    randomization: RandomizationConfig = RandomizationConfig.preset("full")
    """Per-episode look of the world."""
    noise: NoiseConfig = NoiseConfig(steering_std=0.1)
    """DART noise on the executed controls (labels stay clean)."""
    car: CarConfig = CarConfig()
    world: WorldConfig = WorldConfig()
    expert: ExpertConfig = ExpertConfig()
    policy: str | None = None
    """A checkpoint that drives instead of the expert (DAgger data collection); the expert labels every frame and takes over per `interventions`."""
    interventions: InterventionConfig = InterventionConfig()
    """Expert takeover while `policy` drives."""

    def __post_init__(self) -> None:
        check(self.frames >= 1, "frames must be at least 1")
        check(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        check(1 <= self.shard_frames <= 1_000_000, "shard_frames must be in [1, 1000000]")
        check(self.episode_frames >= 1, "episode_frames must be at least 1")
        check_track_source(self.tracks)
        # Both limits would otherwise stop a run only when it reaches them, hours in.
        shards = math.ceil(self.frames / self.shard_frames)
        check(shards <= MAX_SHARDS, f"frames / shard_frames makes {shards:,} shards, more than {MAX_SHARDS:,}: raise shard_frames")
        episodes = math.ceil(min(self.shard_frames, self.frames) / self.episode_frames)  # no shard holds more than frames
        check(episodes <= EPISODES_PER_SHARD_MAX,
              f"shard_frames / episode_frames makes {episodes:,} episodes a shard, more than {EPISODES_PER_SHARD_MAX}: raise episode_frames or lower shard_frames")


T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """Plain, JSON-ready data of a config dataclass (nested ones included)."""
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: Any, where: str = "", base: T | None = None) -> T:
    """Build config `cls` from plain data; unknown keys and wrong types raise ConfigError.

    Keys not given keep their values in `base`, or else the defaults the enclosing config gives them: a
    file holding `{"noise": {"correlation_time": 1.0}}` keeps GenerateConfig's steering noise, not
    NoiseConfig's own default of none.
    """
    label = where.removesuffix(":") or cls.__name__
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: expected a mapping, got {_json_kind(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{label}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; known: {', '.join(fields)}")
    missing = [name for name, f in fields.items()
               if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing and base is None:
        raise ConfigError(f"{label}: {', '.join(missing)} must be given")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        inner = getattr(base, name) if base is not None else _default(fields[name])
        kwargs[name] = _coerce(hints[name], value, _within(where, name), inner)
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    except ConfigError as error:  # a value out of range: say which file and section holds it
        raise ConfigError(f"{label}: {error}" if where else str(error)) from None


def _within(where: str, key: str) -> str:
    """The label of `key` inside the section labelled `where`: "a.b" in a section, "cfg.json: a" at the top of a
    file (whose label ends in ":", as `load_json` gives it)."""
    if not where:
        return key
    return f"{where} {key}" if where.endswith(":") else f"{where}.{key}"


def _json_kind(value: Any) -> str:
    """What a JSON file holds where `value` came from: an object, a list, a string, a number, true/false, null."""
    kinds = ((bool, "true/false"), (dict, "an object"), ((list, tuple), "a list"), (str, "a string"), ((int, float), "a number"))
    return "null" if value is None else next((kind for types_, kind in kinds if isinstance(value, types_)), type(value).__name__)


def _shown(value: Any) -> str:
    """`value` as the JSON file spells it (true, not Python's True), where it has a JSON spelling."""
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError):  # inf from a number too large to be a float (1e400), a tuple's item
        return repr(value)


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _coerce(hint: Any, value: Any, where: str, base: Any = None) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where, base if isinstance(base, hint) else None)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(o for o in options if o is not type(None))
        return _coerce(hint, value, where, base)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {_shown(value)}")
        item = typing.get_args(hint)[0]
        return tuple(_coerce(item, v, where) for v in value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_shown(value)}")
        try:
            number = float(value)
        except OverflowError:  # an integer too large for a float
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(f"{where}: expected a finite number, got {_shown(value)}")
        return number
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_shown(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_shown(value)}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_shown(value)}")
        return value
    return value


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's keys as a dict; ValueError for a key given twice (json would keep the last silently)."""
    data = dict(pairs)
    if len(data) != len(pairs):
        repeated = next(key for key, _ in pairs if [k for k, _ in pairs].count(key) > 1)
        raise _RefusedJSON(f"the key {_shown(repeated)} is given twice in one object")
    return data


class _RefusedJSON(ValueError):
    """Valid JSON that a config file may not hold (NaN, a key given twice)."""


def _refuse_constant(name: str) -> Any:
    raise _RefusedJSON(f"{name} is not a number a config can hold")


def load_json(cls: type[T], path: Path, ignore: tuple[str, ...] = (), overrides: dict[str, Any] | None = None) -> T:
    """Read a config of type `cls` from a JSON file, with a clear error for a bad file. Top-level keys in
    `ignore` are dropped first (e.g. the digests a recording stores beside its config's fields). `overrides`
    (plain data, nested sections merged key by key) replace the file's values before anything is checked,
    so a limit between two values is judged on the values that will run."""
    data = read_json(path, ignore)
    names = {field.name for field in dataclasses.fields(cls)}
    # A train-log.json, dagger.json or manifest.json holds a run's config under "config", beside its results.
    if isinstance(data, dict) and isinstance(data.get("config"), dict) and "config" not in names and not set(data) <= names:
        raise ConfigError(f"{path} is a run's log or manifest, not a config file: its \"config\" section is the run's "
                          "config; save that section as a file of its own and give that")
    return from_dict(cls, merge_plain(data, overrides or {}), f"{path}:")


def merge_plain(data: Any, overrides: dict[str, Any]) -> Any:
    """`data` with `overrides` on top, nested mappings merged key by key (plain JSON data).

    Where `data` has something other than a mapping in place of one of the overrides' sections (or is none
    itself), that stays, for `from_dict` to refuse: replacing it would hide a broken file behind an option."""
    if not isinstance(data, dict):
        return data
    merged = dict(data)
    for key, value in overrides.items():
        merged[key] = merge_plain(merged[key], value) if isinstance(value, dict) and key in merged else value
    return merged


def read_json(path: Path, ignore: tuple[str, ...] = ()) -> Any:
    """The plain data of a JSON config file, top-level keys in `ignore` dropped; ConfigError for a bad file."""
    try:
        data = json.loads(Path(path).read_text(), parse_constant=_refuse_constant, object_pairs_hook=_refuse_repeated_keys)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except _RefusedJSON as error:
        raise ConfigError(f"{path}: {error}") from None
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError, a number of thousands of digits
        other = "; config files are JSON" if Path(path).suffix.lower() != ".json" else ""  # a YAML or TOML file, say
        raise ConfigError(f"{path}: not valid JSON ({error}){other}") from None
    if isinstance(data, dict):
        data = {key: value for key, value in data.items() if key not in ignore}
    return data


__all__ = [
    "CameraConfig",
    "CarConfig",
    "RigConfig",
    "check",
    "ConfigError",
    "EpisodeConfig",
    "ExpertConfig",
    "InterventionConfig",
    "GenerateConfig",
    "NoiseConfig",
    "RandomizationConfig",
    "TrackConfig",
    "WorldConfig",
    "from_dict",
    "load_json",
    "to_dict",
]
