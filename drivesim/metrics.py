"""Closed-loop driving metrics, computed from a per-frame trace (docs/metrics.md defines each).

A `Trace` holds the recorded columns of one episode (or several episodes
concatenated); `closed_loop_metrics` turns it into numbers. Everything here
is plain numpy on recorded data, so the same numbers can be recomputed from
any recording with h5py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from drivesim.drivers.base import DriverKind
from drivesim.record.schema import Event

PILOTNET_INTERVENTION_SECONDS = 6.0
"""NVIDIA's autonomy metric charges each intervention 6 s of human driving (Bojarski et al. 2016)."""

TRACE_COLUMNS = {
    "driver": "meta/driver",
    "events": "meta/events",
    "time": "meta/time",
    "progress": "state/progress",
    "lateral_offset": "state/lateral_offset",
    "steering": "controls/steering",
    "speed": "state/speed",
    "x": "state/x",
    "y": "state/y",
}
"""Trace column -> recording field it is read from."""


@dataclass
class Trace:
    """Per-frame columns of one episode, in order (all arrays of equal length)."""

    driver: np.ndarray
    """meta/driver: 0 expert, 1 policy, 2 human."""
    events: np.ndarray
    """meta/events bit flags."""
    time: np.ndarray
    """Seconds since the episode start [s]."""
    progress: np.ndarray
    """Distance along the road since the start [m]."""
    lateral_offset: np.ndarray
    """Distance from the lane centre, left positive [m]."""
    steering: np.ndarray
    """Applied steering, normalized [-1, 1]."""
    speed: np.ndarray
    """Speed [m/s]."""
    x: np.ndarray
    """East position [m]."""
    y: np.ndarray
    """North position [m]."""

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]]) -> Trace:
        return cls(**{column: np.array([r[name] for r in records]) for column, name in TRACE_COLUMNS.items()})

    @classmethod
    def concatenate(cls, traces: Sequence[Trace]) -> Trace:
        return cls(**{f.name: np.concatenate([getattr(t, f.name) for t in traces]) for f in fields(cls)})

    def __len__(self) -> int:
        return len(self.time)


def count_rising(flags: np.ndarray) -> int:
    """Number of runs of True (a crash lasting several frames is one crash)."""
    flags = np.asarray(flags, dtype=bool)
    return int(np.count_nonzero(flags[1:] & ~flags[:-1]) + (flags[0] if len(flags) else 0))


def lap_flags(trace: Trace, track_length: float) -> tuple[int, int]:
    """(completed laps, completed laps with no intervention) of one episode's trace."""
    lap = np.floor(np.maximum(trace.progress, 0.0) / track_length).astype(int)
    completed = int(max(0, math.floor(max(trace.progress.max(initial=0.0), 0.0) / track_length)))
    starts = (trace.events & Event.INTERVENTION_START) != 0
    dirty = set(lap[starts].tolist())
    return completed, sum(1 for k in range(completed) if k not in dirty)


def closed_loop_metrics(trace: Trace, dt: float, evaluated: DriverKind = DriverKind.POLICY, laps: tuple[int, int] | None = None) -> dict[str, float | int | None]:
    """The metrics of docs/metrics.md for one trace; `laps` = (completed, clean) from `lap_flags`."""
    frames = len(trace)
    elapsed = frames * dt
    interventions = int(np.count_nonzero(trace.events & Event.INTERVENTION_START))
    crashes = count_rising((trace.events & Event.CRASH) != 0)
    forward = np.diff(trace.progress)
    # Progress jumps only through the start-line wrap handled in World; a
    # crash reset keeps progress, so summing positive steps is the distance.
    distance_km = float(np.sum(np.clip(forward, 0.0, None))) / 1000.0
    own = trace.driver == int(evaluated)
    own_pairs = own[1:] & own[:-1]
    steering_rate = np.abs(np.diff(trace.steering))[own_pairs] / dt
    offsets = np.abs(trace.lateral_offset[own])
    metrics: dict[str, float | int | None] = {
        "frames": frames,
        "elapsed_s": elapsed,
        "distance_km": distance_km,
        "autonomy_pct": max(0.0, 1.0 - interventions * PILOTNET_INTERVENTION_SECONDS / elapsed) * 100.0 if elapsed > 0 else None,
        "interventions": interventions,
        "interventions_per_km": interventions / distance_km if distance_km > 0 else None,
        "km_per_intervention": distance_km / interventions if interventions else None,
        "crashes": crashes,
        "laps": None,
        "clean_laps": None,
        "clean_lap_share": None,
        "own_control_share": float(np.mean(own)) if frames else None,
        "mean_abs_offset_m": float(offsets.mean()) if offsets.size else None,
        "rms_offset_m": float(np.sqrt(np.mean(offsets**2))) if offsets.size else None,
        "mean_abs_steering_rate": float(steering_rate.mean()) if steering_rate.size else None,
        "mean_speed_mps": float(trace.speed.mean()) if frames else None,
    }
    if laps is not None:
        completed, clean = laps
        metrics.update(laps=completed, clean_laps=clean, clean_lap_share=clean / completed if completed else None)
    return metrics


def combine(per_track: Sequence[dict[str, Any]], traces: Sequence[Trace], dt: float, evaluated: DriverKind) -> dict[str, Any]:
    """Overall metrics: as if all episodes were one drive (sums of laps, frames, distance)."""
    overall = closed_loop_metrics(Trace.concatenate(traces), dt, evaluated)
    # Steering rate across episode boundaries is meaningless: average the episodes' own, weighted by frames.
    rates = [(m["mean_abs_steering_rate"], m["frames"]) for m in per_track if m["mean_abs_steering_rate"] is not None]
    overall["mean_abs_steering_rate"] = sum(r * n for r, n in rates) / sum(n for _, n in rates) if rates else None
    overall["crashes"] = sum(m["crashes"] for m in per_track)
    completed = sum(m["laps"] or 0 for m in per_track)
    clean = sum(m["clean_laps"] or 0 for m in per_track)
    overall.update(laps=completed, clean_laps=clean, clean_lap_share=clean / completed if completed else None)
    return overall
