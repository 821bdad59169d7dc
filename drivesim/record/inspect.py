"""Looking at a recording: counts, label histograms, a contact sheet of frames, histogram plots.

`summarize_recording` reads only the small per-frame fields, one shard at a
time, so it runs in flat memory on any size of recording. `contact_sheet`
reads just the frames it shows.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from drivesim.atomic import write_figure, write_png
from drivesim.record.reader import open_recording, open_shard
from drivesim.record.schema import DRIVERS, Event, RecordingError
from drivesim.wording import counted

HISTOGRAMS = {
    "labels/steering": (-1.0, 1.0, "+ = left"),
    "labels/throttle": (-1.0, 1.0, "+ = throttle, - = brake"),
    "controls/steering": (-1.0, 1.0, "+ = left"),
    "controls/throttle": (-1.0, 1.0, "+ = throttle, - = brake"),
    "state/speed": (0.0, 30.0, "m/s"),
    "state/lateral_offset": (-3.0, 3.0, "m from the lane centre, + = left"),
    "state/heading_error": (-0.5, 0.5, "rad to the road, + = left"),
}
"""Fields summarize_recording histograms: (low, high, x-axis label); values beyond the range count in the end bins."""
HISTOGRAM_FIELDS = tuple(HISTOGRAMS)
HISTOGRAM_BINS = 21
"""Bins per histogram; odd, so a bin is centred on the middle of the range (0 for the signed fields)."""


def summarize_recording(folder: str | Path) -> dict[str, Any]:
    """Counts and statistics of a recording as plain JSON data.

    Keys: folder, schema_version, drivesim_version, shards, frames, episodes,
    cameras, episode_frames (min/mean/max), drivers (frames per driver name),
    events (per Event name: frames with the flag, onsets = times it turned
    on), histograms (per field: edges and counts), steering and speed
    (mean/std/min/max of labels/steering and state/speed).
    """
    recording = open_recording(folder)
    edges = {name: np.linspace(low, high, HISTOGRAM_BINS + 1) for name, (low, high, _) in HISTOGRAMS.items()}
    counts = {name: np.zeros(HISTOGRAM_BINS, np.int64) for name in HISTOGRAM_FIELDS}
    drivers = dict.fromkeys(DRIVERS.values(), 0)
    events = {flag.name: {"frames": 0, "onsets": 0} for flag in Event}
    moments = {name: [0.0, 0.0, math.inf, -math.inf] for name in ("labels/steering", "state/speed")}
    episode_frames: list[int] = []
    needed = (*HISTOGRAM_FIELDS, *moments, "meta/driver", "meta/episode", "meta/events")
    for index in range(len(recording.shards)):
        path = recording.shard_path(index)
        with open_shard(path) as f:
            try:
                columns = {name: f[name][...] for name in needed}
            except OSError as error:
                raise RecordingError(f"{path}: cannot read the per-frame fields, the file is corrupt ({error})") from None
        for name in HISTOGRAM_FIELDS:
            counts[name] += np.histogram(np.clip(columns[name], edges[name][0], edges[name][-1]), bins=edges[name])[0]
        for name, m in moments.items():
            values = columns[name].astype(np.float64)
            m[0] += values.sum()
            m[1] += np.square(values).sum()
            m[2] = min(m[2], float(values.min()))
            m[3] = max(m[3], float(values.max()))
        for value, name in DRIVERS.items():
            drivers[name] += int(np.count_nonzero(columns["meta/driver"] == value))
        episode, flags = columns["meta/episode"], columns["meta/events"]
        # A flag's onset: set on a frame where it was not set on the frame before in the same episode.
        new_episode = np.concatenate([[True], episode[1:] != episode[:-1]])
        for flag in Event:
            on = (flags & flag.value) != 0
            before = np.concatenate([[False], on[:-1]]) & ~new_episode
            events[flag.name]["frames"] += int(on.sum())
            events[flag.name]["onsets"] += int((on & ~before).sum())
        episode_frames.extend(np.diff(np.flatnonzero(np.concatenate([new_episode, [True]]))).tolist())
    n = recording.frames

    def stats(name: str) -> dict[str, float]:
        total, squares, low, high = moments[name]
        mean = total / n
        return {"mean": mean, "std": math.sqrt(max(0.0, squares / n - mean * mean)), "min": low, "max": high}

    return {
        "folder": str(recording.folder),
        "schema_version": recording.manifest.schema_version,
        "drivesim_version": recording.manifest.drivesim_version,
        "shards": len(recording.shards),
        "frames": n,
        "episodes": recording.episodes,
        "cameras": {name: list(hw) for name, hw in recording.cameras.items()},
        "episode_frames": {"min": min(episode_frames), "mean": n / len(episode_frames), "max": max(episode_frames)},
        "drivers": drivers,
        "events": events,
        "histograms": {name: {"edges": edges[name].tolist(), "counts": c.tolist()} for name, c in counts.items()},
        "steering": stats("labels/steering"),
        "speed": stats("state/speed"),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines of text for a terminal, from `summarize_recording`'s result."""
    steering, speed = summary["steering"], summary["speed"]
    lines = [
        f"{summary['folder']}: schema v{summary['schema_version']}, written by drivesim {summary['drivesim_version']}",
        f"  {counted(summary['frames'], 'frame')}, {counted(summary['episodes'], 'episode')} in {counted(summary['shards'], 'shard')}; "
        f"episode length {summary['episode_frames']['min']}..{summary['episode_frames']['max']} frames",
        "  cameras: " + ", ".join(f"{name} {w}x{h}" for name, (h, w) in summary["cameras"].items()),
        "  drivers: " + ", ".join(f"{name} {count}" for name, count in summary["drivers"].items()),
        "  events (frames / onsets): " + ", ".join(f"{name.lower()} {e['frames']}/{e['onsets']}" for name, e in summary["events"].items()),
        f"  steering label: mean {steering['mean']:+.3f}, std {steering['std']:.3f}, range [{steering['min']:+.2f}, {steering['max']:+.2f}]",
        f"  speed: mean {speed['mean']:.1f} m/s, max {speed['max']:.1f} m/s",
    ]
    return "\n".join(lines)


def _draw_label(tile: np.ndarray, steering: float, caption: str) -> None:
    """Draw the steering label on a BGR tile: a bar from the centre (left for positive = left turn) and the value."""
    h, w = tile.shape[:2]
    y = h - 8
    centre = w // 2
    end = int(round(centre - steering * (w // 2 - 4)))
    cv2.line(tile, (4, y), (w - 5, y), (40, 40, 40), 5)
    cv2.line(tile, (centre, y), (end, y), (0, 215, 255), 5)
    cv2.line(tile, (centre, y - 5), (centre, y + 4), (255, 255, 255), 1)
    # Arrow: the direction the label steers, 0 = straight up, +1 = 45 degrees left.
    angle = steering * math.pi / 4
    tip = (int(round(centre - 0.25 * h * math.sin(angle))), int(round(y - 6 - 0.25 * h * math.cos(angle))))
    cv2.arrowedLine(tile, (centre, y - 6), tip, (0, 215, 255), 2, cv2.LINE_AA, tipLength=0.3)
    for text, origin in ((f"{steering:+.2f}", (4, 14)), (caption, (4, 28))):
        cv2.putText(tile, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)


def contact_sheet(
    folder: str | Path,
    out_png: str | Path,
    n: int = 24,
    camera: str = "center",
    seed: int = 0,
    scale: int = 2,
    columns: int = 6,
) -> Path:
    """Write a PNG grid of `n` frames drawn at random (seeded) with their steering labels drawn on them.

    Each frame is enlarged `scale` times; the label shows as a bar and an
    arrow (left = positive = turn left) and as text, with episode and step.
    The label is the recording's, the car's, whichever `camera` is shown: a
    side camera's frames train with `drivesim train`'s side correction added,
    which the sheet does not draw.
    """
    recording = open_recording(folder)
    if camera not in recording.cameras:
        raise RecordingError(f"{folder}: no camera {camera!r}; it has {', '.join(recording.cameras)}")
    if n < 1:
        raise RecordingError("a contact sheet needs n >= 1 frames")
    picks = np.sort(np.random.default_rng(seed).choice(recording.frames, size=min(n, recording.frames), replace=False))
    starts = np.concatenate([[0], np.cumsum([s.frames for s in recording.shards])])
    height, width = recording.cameras[camera]
    tile_h, tile_w = height * scale, width * scale
    columns = min(columns, len(picks))
    rows = math.ceil(len(picks) / columns)
    sheet = np.full((rows * (tile_h + 2) + 2, columns * (tile_w + 2) + 2, 3), 255, np.uint8)
    for shard in range(len(recording.shards)):
        locals_ = picks[(picks >= starts[shard]) & (picks < starts[shard + 1])] - starts[shard]
        if len(locals_) == 0:
            continue
        with open_shard(recording.shard_path(shard)) as f:
            try:
                images = f["images/" + camera][locals_]
                steering = f["labels/steering"][locals_]
                episode, step = f["meta/episode"][locals_], f["meta/step"][locals_]
            except OSError as error:
                raise RecordingError(f"{recording.shard_path(shard)}: cannot read frames, the file is corrupt ({error})") from None
        for k in range(len(locals_)):
            slot = int(np.searchsorted(picks, starts[shard] + locals_[k]))
            tile = cv2.resize(images[k], (tile_w, tile_h), interpolation=cv2.INTER_NEAREST)
            tile = cv2.cvtColor(tile, cv2.COLOR_RGB2BGR)
            _draw_label(tile, float(steering[k]), f"ep {episode[k]} step {step[k]}")
            r, c = divmod(slot, columns)
            y, x = 2 + r * (tile_h + 2), 2 + c * (tile_w + 2)
            sheet[y : y + tile_h, x : x + tile_w] = tile
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    return write_png(out_png, sheet)


def plot_histograms(summary: dict[str, Any], out_png: str | Path) -> Path:
    """Plot `summarize_recording`'s histograms and event counts into one PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    histograms = summary["histograms"]
    columns = 4
    rows = -(-(len(histograms) + 1) // columns)
    figure = Figure(figsize=(4 * columns, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (name, h) in zip(axes, histograms.items(), strict=False):
        ax.stairs(h["counts"], h["edges"], fill=True, alpha=0.8)
        ax.set_title(name)
        ax.set_xlabel(HISTOGRAMS[name][2] if name in HISTOGRAMS else "")
        ax.set_ylabel("frames")
    for ax in axes[len(histograms) + 1 :]:
        ax.set_visible(False)
    ax = axes[len(histograms)]
    names = list(summary["events"])
    ax.bar(range(len(names)), [summary["events"][k]["onsets"] for k in names])
    ax.set_xticks(range(len(names)), [k.lower().replace("_", "\n") for k in names], fontsize=7)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"event onsets ({summary['frames']} frames, {summary['episodes']} episodes)", fontsize=9)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    write_figure(out_png, figure, dpi=100, metadata={"Software": None})
    return out_png


__all__ = ["contact_sheet", "format_summary", "plot_histograms", "summarize_recording"]
