"""Synthetic recordings for the record tests: tiny images, values that differ per frame."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from drivesim.record import ShardWriter

CAMERAS = {"center": (24, 32)}
ATTRS = {"config": {"camera": {"width": 32, "height": 24}}, "camera_intrinsics": {"fov": 1.4, "width": 32, "height": 24}}


def make_frame(i: int, episode: int, step: int, cameras=CAMERAS) -> dict:
    """Frame number `i` of a synthetic recording; every field depends on i so frames can be told apart."""
    record = {}
    for k, (name, (h, w)) in enumerate(sorted(cameras.items())):
        image = (np.arange(h * w * 3, dtype=np.int64).reshape(h, w, 3) + 7 * i + 50 * k) % 256
        record[f"images/{name}"] = image.astype(np.uint8)
    steering = math.sin(0.3 * i)
    record.update({
        "labels/steering": steering,
        "labels/steering_rad": 0.5 * steering,
        "labels/throttle": math.cos(0.2 * i) * 0.8,
        "controls/steering": np.clip(steering + 0.1, -1, 1),
        "controls/throttle": 0.5,
        "state/x": 10.0 + i,
        "state/y": -3.0 * i,
        "state/yaw": math.remainder(0.05 * i, 2 * math.pi),
        "state/speed": 0.25 * step,
        "state/lateral_offset": 0.1 * math.sin(i),
        "state/heading_error": 0.01 * math.cos(i),
        "state/progress": 1.5 * step,
        "state/curvature": 0.02,
        "meta/episode": episode,
        "meta/step": step,
        "meta/time": 0.05 * step,
        "meta/driver": i % 3,
        "meta/events": (1 if i % 5 == 0 else 0) | (8 if 3 <= step < 6 else 0),
    })
    return record


def write_frames(writer, lengths, first_episode=0, cameras=CAMERAS):
    """Write episodes of `lengths` frames into `writer`; returns the records written."""
    records, i = [], 0
    for e, length in enumerate(lengths):
        episode = first_episode + e
        for step in range(length):
            record = make_frame(i, episode, step, cameras)
            writer.add_frame(record)
            records.append(record)
            i += 1
        writer.end_episode({"track": f"seed-{100 + episode}", "track_seed": 100 + episode, "randomization": {"hue": 0.1 * e}})
    return records


def write_shard(path: Path, lengths=(7, 12, 5), cameras=CAMERAS, **kwargs):
    """One shard at `path`; returns (ShardInfo, records)."""
    with ShardWriter(path, cameras, ATTRS, **kwargs) as writer:
        records = write_frames(writer, lengths, cameras=cameras)
    return writer.info, records
