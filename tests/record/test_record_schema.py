"""The schema table and `validate_frames`: every field of DESIGN.md, and clear errors for bad values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from record_helpers import CAMERAS, make_frame

from drivesim.drivers.base import DriverKind
from drivesim.record import DRIVERS, FIELDS_BY_NAME, Event, RecordingError, image_field, shard_fields, validate_frames

DESIGN_FIELDS = {
    "labels/steering": "float32", "labels/steering_rad": "float32", "labels/throttle": "float32",
    "controls/steering": "float32", "controls/throttle": "float32",
    "state/x": "float32", "state/y": "float32", "state/yaw": "float32", "state/speed": "float32",
    "state/lateral_offset": "float32", "state/heading_error": "float32", "state/progress": "float32", "state/curvature": "float32",
    "meta/episode": "int32", "meta/step": "int32", "meta/time": "float32", "meta/driver": "uint8", "meta/events": "uint8",
}


def batch_of(n: int) -> dict:
    frames = [make_frame(i, episode=0, step=i) for i in range(n)]
    return {name: np.stack([np.asarray(f[name]) for f in frames]) for name in frames[0]}


def test_schema_has_exactly_the_design_fields():
    assert {name: f.dtype for name, f in FIELDS_BY_NAME.items()} == DESIGN_FIELDS
    assert all(f.shape == () for f in FIELDS_BY_NAME.values())
    image = image_field("left", 120, 160)
    assert (image.name, image.dtype, image.shape) == ("images/left", "uint8", (120, 160, 3))


def test_event_flags_and_drivers():
    assert [(e.name, e.value) for e in Event] == [
        ("OFF_ROAD", 1), ("CRASH", 2), ("INTERVENTION_START", 4), ("RECOVERING", 8), ("EPISODE_RESET", 16)
    ]
    assert DRIVERS == {k.value: k.name.lower() for k in DriverKind}


def test_valid_batch_comes_back_in_schema_dtypes():
    fields = shard_fields(CAMERAS)
    out = validate_frames(batch_of(6), fields)
    assert set(out) == set(fields)
    for name, field in fields.items():
        assert out[name].dtype == field.np_dtype and out[name].shape == (6, *field.shape)


def test_unknown_and_missing_fields():
    fields = shard_fields(CAMERAS)
    batch = batch_of(3)
    with pytest.raises(RecordingError, match="unknown field.*labels/steer_angle"):
        validate_frames({**batch, "labels/steer_angle": np.zeros(3)}, fields)
    del batch["state/speed"]
    with pytest.raises(RecordingError, match="missing field.*state/speed"):
        validate_frames(batch, fields)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("images/center", lambda b: b.astype(np.float32) / 255, "images/center: expected uint8 values, got dtype float32"),
        ("images/center", lambda b: b[:, :, :-1], r"images/center: expected shape \(3, 24, 32, 3\)"),
        ("meta/episode", lambda b: b + 0.5, "meta/episode: expected int32 values, got dtype float64"),
        ("labels/steering", lambda b: np.array(["left"] * 3), "labels/steering: expected float32 values"),
        ("meta/events", lambda b: b > 0, "meta/events: expected uint8 values, got dtype bool"),
        ("meta/driver", lambda b: b + 300, "meta/driver: values .* do not fit uint8"),
        ("labels/steering", lambda b: b[:2], "same number of frames"),
    ],
)
def test_bad_dtype_or_shape(name, value, message):
    batch = batch_of(3)
    batch[name] = value(batch[name])
    with pytest.raises(RecordingError, match=message):
        validate_frames(batch, shard_fields(CAMERAS))


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("labels/steering", 1.5, r"labels/steering: value 1.5 is outside \[-1, 1\] \(frame 12\)"),
        ("controls/throttle", -1.01, r"controls/throttle: value -1.01 is outside \[-1, 1\]"),
        ("state/speed", -0.5, r"state/speed: value -0.5 is outside \[0, inf\)"),
        ("state/x", math.nan, "state/x: value nan is not finite"),
        ("meta/time", math.inf, "meta/time: value inf is not finite"),
        ("meta/driver", 3, r"meta/driver: value 3 is outside \{0, 1, 2\}"),
        ("meta/events", 32, r"meta/events: value 32 is outside \[0, 31\]"),
        ("meta/step", -1, r"meta/step: value -1 is outside \[0, inf\)"),
        ("state/heading_error", 3.2, r"state/heading_error: value 3.2 is outside \[-pi, pi\]"),
    ],
)
def test_out_of_range_values_name_field_and_frame(name, bad, message):
    batch = batch_of(5)
    batch[name] = batch[name].astype(np.float64 if isinstance(bad, float) else np.int64)
    batch[name][2] = bad
    with pytest.raises(RecordingError, match=message) as info:
        validate_frames(batch, shard_fields(CAMERAS), first_frame=10)
    assert info.value.frame == 12


def test_bounds_hold_in_float32():
    batch = batch_of(2)
    batch["state/heading_error"] = np.array([math.pi, -math.pi])
    batch["labels/steering"] = np.array([1.0, -1.0], np.float64)
    out = validate_frames(batch, shard_fields(CAMERAS))
    assert out["state/heading_error"].dtype == np.float32


def test_unknown_camera_is_refused():
    with pytest.raises(RecordingError, match="unknown camera 'rear'"):
        shard_fields({"center": (24, 32), "rear": (24, 32)})
    with pytest.raises(RecordingError, match="positive integers"):
        image_field("center", 0, 32)


def test_store_keeps_plain_values_exactly_as_coerce_and_refuses_what_coerce_refuses():
    import numpy as np
    import pytest

    from drivesim.record import FIELDS_BY_NAME, RecordingError

    for name, values in (("labels/steering", [0.1, -1.0, 1e-40]), ("meta/episode", [0, 2**31 - 1]), ("meta/events", [0, 255])):
        field = FIELDS_BY_NAME[name]
        stored = np.empty(len(values), field.np_dtype)
        for i, value in enumerate(values):
            field.store(stored, i, value)
        np.testing.assert_array_equal(stored, np.array([field.coerce(v) for v in values]))
    buffer = np.empty(1, np.uint8)
    for bad in (256, -1, 0.5, True):
        with pytest.raises(RecordingError):
            FIELDS_BY_NAME["meta/events"].store(buffer, 0, bad)
