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
    """(completed laps, clean laps) of one episode's trace. A lap is clean when no frame of it starts an
    intervention, is driven by the expert recovering from one, or crashes."""
    lap = np.floor(np.maximum(trace.progress, 0.0) / track_length).astype(int)
    completed = int(max(0, math.floor(max(trace.progress.max(initial=0.0), 0.0) / track_length)))
    troubled = (trace.events & (Event.INTERVENTION_START | Event.RECOVERING | Event.CRASH)) != 0
    dirty = set(lap[troubled].tolist())
    return completed, sum(1 for k in range(completed) if k not in dirty)


def elapsed_seconds(trace: Trace, dt: float) -> float:
    """Simulated time the trace covers [s]: a step per frame, except the frame recorded after a crash reset,
    which repeats the crash frame's time (the car was put back, no time passed)."""
    repeated = int(np.count_nonzero(np.diff(trace.time) == 0))
    return (len(trace) - repeated) * dt


def evaluated_frames(trace: Trace, evaluated: DriverKind) -> np.ndarray:
    """Frames the driver under test controlled: its kind in `meta/driver`, and not an expert recovery (which has
    the same kind when the driver under test is an expert itself, as in the reference row)."""
    return (trace.driver == int(evaluated)) & ((trace.events & Event.RECOVERING) == 0)


def closed_loop_metrics(
    trace: Trace, dt: float, evaluated: DriverKind = DriverKind.POLICY, laps: tuple[int, int] | None = None, takeover: bool = True
) -> dict[str, float | int | None]:
    """The metrics of docs/metrics.md for one trace; `laps` = (completed, clean) from `lap_flags`.

    Without `takeover` (an evaluation with interventions off) the intervention-based figures are None."""
    frames = len(trace)
    elapsed = elapsed_seconds(trace, dt)
    interventions = int(np.count_nonzero(trace.events & Event.INTERVENTION_START))
    crashes = count_rising((trace.events & Event.CRASH) != 0)
    # Progress jumps only through the start-line wrap handled in World; a
    # crash reset keeps progress, so summing positive steps is the distance.
    distance_km = float(np.sum(np.clip(np.diff(trace.progress), 0.0, None))) / 1000.0
    own = evaluated_frames(trace, evaluated)
    steering_rate = _steering_rates(trace, dt, own)
    offsets = np.abs(trace.lateral_offset[own])
    metrics: dict[str, float | int | None] = {
        "frames": frames,
        "elapsed_s": elapsed,
        "distance_km": distance_km,
        "interventions": interventions,
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
    metrics.update(_intervention_rates(interventions, elapsed, distance_km, takeover))
    if laps is not None:
        completed, clean = laps
        metrics.update(laps=completed, clean_laps=clean, clean_lap_share=clean / completed if completed else None)
    return metrics


def combine(per_track: Sequence[dict[str, Any]], traces: Sequence[Trace], dt: float, evaluated: DriverKind, takeover: bool = True) -> dict[str, Any]:
    """Overall metrics: as if all episodes were one drive. Counts, time and distance are the tracks' sums;
    offsets and speed are pooled over the frames, the steering rate over consecutive frames within a track."""
    overall = closed_loop_metrics(Trace.concatenate(traces), dt, evaluated, takeover=takeover)
    for key in ("elapsed_s", "distance_km", "interventions", "crashes"):
        overall[key] = sum(m[key] for m in per_track)
    overall.update(_intervention_rates(overall["interventions"], overall["elapsed_s"], overall["distance_km"], takeover))
    rates = np.concatenate([_steering_rates(t, dt, evaluated_frames(t, evaluated)) for t in traces]) if traces else np.empty(0)
    overall["mean_abs_steering_rate"] = float(rates.mean()) if rates.size else None
    completed = sum(m["laps"] or 0 for m in per_track)
    clean = sum(m["clean_laps"] or 0 for m in per_track)
    overall.update(laps=completed, clean_laps=clean, clean_lap_share=clean / completed if completed else None)
    return overall


def _steering_rates(trace: Trace, dt: float, own: np.ndarray) -> np.ndarray:
    """|change of applied steering| per second between consecutive frames both driven by the evaluated driver,
    one step apart (not across a crash reset, where no time passes)."""
    pairs = own[1:] & own[:-1] & (np.diff(trace.time) != 0)
    return np.abs(np.diff(trace.steering))[pairs] / dt


def _intervention_rates(interventions: int, elapsed: float, distance_km: float, takeover: bool) -> dict[str, float | None]:
    if not takeover:  # nobody took over, so there is nothing to charge
        return {"autonomy_pct": None, "interventions_per_km": None, "km_per_intervention": None}
    return {
        "autonomy_pct": max(0.0, 1.0 - interventions * PILOTNET_INTERVENTION_SECONDS / elapsed) * 100.0 if elapsed > 0 else None,
        "interventions_per_km": interventions / distance_km if distance_km > 0 else None,
        "km_per_intervention": distance_km / interventions if interventions else None,
    }
