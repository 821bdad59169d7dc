"""The recording schema (version 1), declared once: every dataset of a shard, its dtype, shape and range.

`FIELDS` lists the per-frame datasets every shard has; `image_field` builds the
`images/<camera>` dataset of each camera. `validate_frames` checks a batch of
frames against these declarations and is called on every write; the reader
checks the same declarations when it opens a shard. docs/data-format.md shows
`schema_markdown_table()`, and a test keeps the two equal.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntFlag

import numpy as np

from drivesim.atomic import TMP_SUFFIX
from drivesim.errors import DrivesimError

SCHEMA_VERSION = 1
"""Version of the format written by this code; readers refuse any other."""

CAMERA_NAMES = ("center", "left", "right")
"""Cameras a shard may hold, as `images/<camera>`."""

SHARD_PATTERN = re.compile(r"^shard-(\d{5})\.h5$")
"""File names of shards in a recording folder."""

MANIFEST_NAME = "manifest.json"
"""The manifest's file name in a recording folder."""

# Files still being written carry TMP_SUFFIX; they are renamed without it when complete.


class RecordingError(DrivesimError, ValueError):
    """A recording, shard or frame does not match the schema, or a file is missing or corrupt."""


class Event(IntFlag):
    """Bit flags of `meta/events`; a frame may carry several."""

    OFF_ROAD = 1
    """Some corner of the car is off the asphalt."""
    CRASH = 2
    """The car left the road by more than the crash margin or faces the wrong way."""
    INTERVENTION_START = 4
    """A network lost the wheel at this frame: to the expert (eval, dagger, generate) or to a human (play)."""
    RECOVERING = 8
    """Whoever took over is driving, until control is handed back; meta/driver says who (expert or human)."""
    EPISODE_RESET = 16
    """The car was placed on the road at this frame: every episode's first frame, and the frame after a
    crash when the episode goes on (count crashes with CRASH, not with this)."""


DRIVERS = {0: "expert", 1: "policy", 2: "human"}
"""Values of `meta/driver` and their names (same numbers as `drivesim.drivers.DriverKind`)."""


@dataclass(frozen=True)
class Field:
    """One per-frame dataset of a shard; stored with shape (N, *shape)."""

    name: str
    """Dataset path in the shard, e.g. "labels/steering"."""
    dtype: str
    """NumPy dtype name of the stored values, e.g. "float32"."""
    shape: tuple[int, ...]
    """Shape of one frame's value; () for a scalar."""
    unit: str
    """Unit of the values, "-" when dimensionless."""
    meaning: str
    """One line: what the value is."""
    low: float | None = None
    """Smallest allowed value, inclusive; None = no bound (floats must still be finite)."""
    high: float | None = None
    """Largest allowed value, inclusive; None = no bound."""
    values: tuple[int, ...] | None = None
    """The only allowed values, for enumerations; None = any value in [low, high]."""

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def range_text(self) -> str:
        """The allowed values in words, for messages and docs."""
        if self.values is not None:
            return "{" + ", ".join(str(v) for v in self.values) + "}"
        if self.low is None and self.high is None:
            return "finite" if self.np_dtype.kind == "f" else "any"
        low = "(-inf" if self.low is None else "[" + _number(self.low)
        high = "inf)" if self.high is None else _number(self.high) + "]"
        return f"{low}, {high}"

    def coerce(self, value: object, frames: int | None = None) -> np.ndarray:
        """`value` as an array of this field's dtype, shape `shape` or (frames, *shape).

        Float fields take integers and floats, integer fields only integers
        that fit; anything else (a float image, a string, a bool) raises
        RecordingError. Values are not range-checked here: see `check_values`.
        """
        array = np.asarray(value)
        kind = array.dtype.kind
        target = self.np_dtype
        if target.kind == "f":
            ok = kind in "fiu"
        else:
            ok = kind in "iu"
        if not ok:
            raise RecordingError(f"{self.name}: expected {self.dtype} values, got dtype {array.dtype}")
        shape = self.shape if frames is None else (frames, *self.shape)
        if array.shape != shape:
            raise RecordingError(f"{self.name}: expected shape {shape}, got {array.shape}")
        if array.dtype == target:
            return array
        if target.kind != "f" and array.size:
            info = np.iinfo(target)
            if array.min() < info.min or array.max() > info.max:
                raise RecordingError(f"{self.name}: values {array.min()}..{array.max()} do not fit {self.dtype}")
        return array.astype(target)

    def store(self, buffer: np.ndarray, index: int, value: object) -> None:
        """`buffer[index] = coerce(value)`. A Python float for a float field, or a Python int that fits an
        integer field, is stored as it is: the same value without the array round trip (this runs for every
        field of every frame)."""
        kind = type(value)
        plain = kind is self._plain and (kind is float or self._int_low <= value <= self._int_high)  # type: ignore[operator]
        buffer[index] = value if plain else self.coerce(value)

    @functools.cached_property
    def _plain(self) -> type | None:
        """The Python type `store` writes directly: float for float scalars, int for integer scalars."""
        if self.shape:
            return None
        return float if self.np_dtype.kind == "f" else int

    @functools.cached_property
    def _int_low(self) -> int:
        return int(np.iinfo(self.np_dtype).min) if self.np_dtype.kind in "iu" else 0

    @functools.cached_property
    def _int_high(self) -> int:
        return int(np.iinfo(self.np_dtype).max) if self.np_dtype.kind in "iu" else 0

    def check_values(self, array: np.ndarray, first_frame: int = 0) -> None:
        """Raise RecordingError unless every value of `array` (frames of this field's dtype) is finite and allowed.

        The error names the first bad frame, counting from `first_frame`, and
        carries its number as the attribute `frame`.
        """
        if self.np_dtype.kind == "f":
            bad = ~np.isfinite(array)
            if bad.any():
                _raise_at(bad, first_frame, f"{self.name}: value {array[bad].flat[0]!s} is not finite")
        if self.values is not None:
            bad = ~np.isin(array, self.values)
        else:
            limits = np.iinfo(self.np_dtype) if self.np_dtype.kind in "iu" else None
            # Bounds in the stored dtype, so float32(pi) passes a bound of math.pi;
            # a bound at the dtype's own limit (an image's 0 and 255) is skipped.
            low = None if self.low is None or (limits is not None and self.low <= limits.min) else self.np_dtype.type(self.low)
            high = None if self.high is None or (limits is not None and self.high >= limits.max) else self.np_dtype.type(self.high)
            if low is None and high is None:
                return
            bad = (array < low) if high is None else (array > high) if low is None else (array < low) | (array > high)
        if bad.any():
            _raise_at(bad, first_frame, f"{self.name}: value {array[bad].flat[0]!s} is outside {self.range_text}")


def _number(x: float) -> str:
    for name, value in (("pi", math.pi), ("2pi", 2 * math.pi)):
        if abs(abs(x) - value) < 1e-12:
            return name if x > 0 else "-" + name
    return f"{x:g}"


def _raise_at(bad: np.ndarray, first_frame: int, message: str) -> None:
    frame = first_frame + int(np.argwhere(bad)[0][0])
    error = RecordingError(f"{message} (frame {frame})")
    error.frame = frame  # type: ignore[attr-defined]
    raise error


def _scalar(name: str, dtype: str, unit: str, meaning: str, low=None, high=None, values=None) -> Field:
    return Field(name, dtype, (), unit, meaning, low, high, values)


FIELDS: tuple[Field, ...] = (
    _scalar("labels/steering", "float32", "-", "expert steering for this frame, +1 = full left — the training target", -1, 1),
    _scalar("labels/steering_rad", "float32", "rad", "the same label as a front-wheel angle, positive = left", -1.2, 1.2),
    _scalar("labels/throttle", "float32", "-", "expert throttle; negative = brake", -1, 1),
    _scalar("controls/steering", "float32", "-", "steering actually applied (policy, human or noise may differ from the label)", -1, 1),
    _scalar("controls/throttle", "float32", "-", "throttle actually applied", -1, 1),
    _scalar("state/x", "float32", "m", "east position of the car's centre"),
    _scalar("state/y", "float32", "m", "north position of the car's centre"),
    _scalar("state/yaw", "float32", "rad", "heading, counter-clockwise from +x (normally wrapped to [-pi, pi])", -2 * math.pi, 2 * math.pi),
    _scalar("state/speed", "float32", "m/s", "forward speed", 0, None),
    _scalar("state/lateral_offset", "float32", "m", "offset from the lane centre, positive = left"),
    _scalar("state/heading_error", "float32", "rad", "car yaw minus road heading", -math.pi, math.pi),
    _scalar("state/progress", "float32", "m", "signed distance driven along the road since the episode's reset"),
    _scalar("state/curvature", "float32", "1/m", "road curvature at the car, positive = bending left", -1, 1),
    _scalar("meta/episode", "int32", "-", "episode id, unique in the recording", 0, None),
    _scalar("meta/step", "int32", "-", "step of this frame in its episode", 0, None),
    _scalar("meta/time", "float32", "s", "simulated time since the episode started", 0, None),
    _scalar("meta/driver", "uint8", "-", "who drove: 0 expert, 1 policy, 2 human", values=tuple(DRIVERS)),
    _scalar("meta/events", "uint8", "-", "bit flags of `Event`: 1 off-road, 2 crash, 4 intervention start, 8 recovering, 16 episode reset", 0, 31),
)
"""Every per-frame dataset of a shard except the images, in a fixed order."""

FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}

EPISODE_KEYS = ("track", "track_seed")
"""Keys every `ShardWriter.end_episode` info must have: track id/name (str) and its generator seed (int or null)."""


def image_field(camera: str, height: int, width: int) -> Field:
    """The `images/<camera>` field of a camera with (height, width) pixels."""
    if camera not in CAMERA_NAMES:
        raise RecordingError(f"unknown camera {camera!r}; known: {', '.join(CAMERA_NAMES)}")
    if not (isinstance(height, (int, np.integer)) and isinstance(width, (int, np.integer)) and height > 0 and width > 0):
        raise RecordingError(f"camera {camera!r}: height and width must be positive integers, got {height}x{width}")
    return Field(f"images/{camera}", "uint8", (int(height), int(width), 3), "-", f"RGB frame of the {camera} camera, row 0 at the top", 0, 255)


def shard_fields(cameras: Mapping[str, tuple[int, int]]) -> dict[str, Field]:
    """Every field of a shard with these cameras (name -> (height, width)), images first."""
    if not cameras:
        raise RecordingError("a shard needs at least one camera")
    fields = {f"images/{c}": image_field(c, *hw) for c, hw in cameras.items()}
    fields.update(FIELDS_BY_NAME)
    return fields


def validate_frames(batch: Mapping[str, object], fields: Mapping[str, Field], first_frame: int = 0) -> dict[str, np.ndarray]:
    """Check a batch of frames (field name -> values with a leading frame axis) against `fields`.

    Every field must be present and no other; dtypes must convert without
    loss, shapes match, floats be finite and values lie in their range.
    Returns the values as arrays of the schema's dtypes; raises RecordingError
    naming the field, the frame (counted from `first_frame`) and the problem.
    """
    unknown = sorted(set(batch) - set(fields))
    if unknown:
        raise RecordingError(f"unknown field(s) {', '.join(unknown)}; the schema has {', '.join(fields)}")
    missing = [name for name in fields if name not in batch]
    if missing:
        raise RecordingError(f"missing field(s) {', '.join(missing)}")
    arrays = {name: np.asarray(batch[name]) for name in fields}
    lengths = {name: len(a) if a.ndim else None for name, a in arrays.items()}
    frames = lengths[next(iter(fields))]
    if frames is None or any(n != frames for n in lengths.values()):
        raise RecordingError(f"every field needs the same number of frames on a leading axis; got {lengths}")
    out = {}
    for name, field in fields.items():
        array = field.coerce(arrays[name], frames)
        field.check_values(array, first_frame)
        out[name] = array
    return out


def schema_markdown_table() -> str:
    """The schema as a Markdown table (docs/data-format.md shows it); images as (N, H, W, 3)."""
    rows = ["| dataset | dtype | shape | allowed values | unit | meaning |", "|---|---|---|---|---|---|"]
    rows.append("| `images/<camera>` | uint8 | (N, H, W, 3) | [0, 255] | - | RGB frame of each camera (`center`; `left`, `right` when the rig has them), row 0 at the top |")
    for field in FIELDS:
        rows.append(f"| `{field.name}` | {field.dtype} | (N,) | {field.range_text} | {field.unit} | {field.meaning} |")
    return "\n".join(rows) + "\n"


__all__ = [
    "CAMERA_NAMES",
    "DRIVERS",
    "EPISODE_KEYS",
    "Event",
    "FIELDS",
    "FIELDS_BY_NAME",
    "Field",
    "MANIFEST_NAME",
    "RecordingError",
    "SCHEMA_VERSION",
    "SHARD_PATTERN",
    "TMP_SUFFIX",
    "image_field",
    "schema_markdown_table",
    "shard_fields",
    "validate_frames",
]
