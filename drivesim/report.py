"""Evaluation reports: metric tables (JSON, Markdown) and pictures of how each track was driven."""

from __future__ import annotations

import io
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from drivesim.atomic import missing_folders, remove_empty_folders, write_atomically
from drivesim.drivers.base import DriverKind
from drivesim.evaluate import Evaluation, TrackRun
from drivesim.record.schema import Event
from drivesim.render.topdown import TopDownMap
from drivesim.track import Track

DRIVER_COLORS = {DriverKind.EXPERT: (245, 150, 30), DriverKind.POLICY: (40, 110, 240), DriverKind.HUMAN: (170, 60, 200)}
"""Trajectory colour (RGB) by who was driving."""
INTERVENTION_COLOR = (235, 40, 235)
"""Ring where an intervention started (RGB): magenta, apart from the map's red start line and yellow arrow."""
CRASH_COLOR = (15, 15, 15)
"""Ring where the car crashed (RGB)."""

TABLE_COLUMNS = [
    ("autonomy_pct", "autonomy %", "{:.2f}"),
    ("interventions", "interventions", "{}"),
    ("interventions_per_km", "interv./km", "{:.2f}"),
    ("km_per_intervention", "km/interv.", "{:.2f}"),
    ("clean_lap_share", "clean laps", "{:.0%}"),
    ("crashes", "crashes", "{}"),
    ("mean_abs_offset_m", "mean abs offset [m]", "{:.3f}"),
    ("rms_offset_m", "RMS offset [m]", "{:.3f}"),
    ("mean_abs_steering_rate", "steering rate [1/s]", "{:.3f}"),
    ("mean_speed_mps", "speed [m/s]", "{:.1f}"),
    ("distance_km", "distance [km]", "{:.2f}"),
]


def format_figure(value: Any, fmt: str) -> str:
    """`value` in `fmt`; "–" for a figure that was not measured (None: no distance, or no takeover), "∞" for an infinite one."""
    if value is None:
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return fmt.format(value)


def markdown_table(rows: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """A Markdown table with one row per (name, metrics)."""
    header = "| | " + " | ".join(title for _, title, _ in TABLE_COLUMNS) + " |"
    rule = "|---" * (len(TABLE_COLUMNS) + 1) + "|"
    body = ["| " + name + " | " + " | ".join(format_figure(_shown(metrics, key), fmt) for key, _, fmt in TABLE_COLUMNS) + " |" for name, metrics in rows]
    return "\n".join([header, rule, *body])


def _shown(metrics: dict[str, Any], key: str) -> Any:
    """The value a table shows: km per intervention with none on a real distance is infinite (JSON keeps null)."""
    value = metrics.get(key)
    if key == "km_per_intervention" and value is None and metrics.get("autonomy_pct") is not None:
        if metrics.get("interventions") == 0 and (metrics.get("distance_km") or 0) > 0:
            return math.inf
    return value


def write_report(evaluations: Sequence[Evaluation], folder: Path | str) -> Path:
    """metrics.json, metrics.md and one PNG per evaluation (trajectories and lateral offsets) in `folder`.

    The report is whole or absent: metrics.json, which marks a finished report (`drivesim dagger` takes
    an evaluation that has one as done), is written last; an earlier report is removed before anything
    is written, and a write that fails takes back what it wrote. Every picture is drawn in memory
    first, so Ctrl-C while drawing (the slow part) leaves an earlier report as it was."""
    folder = Path(folder)
    lines = ["# Closed-loop evaluation", "", "## Overall", "", markdown_table([(e.driver, e.overall) for e in evaluations]), ""]
    pictures: dict[Path, bytes] = {}
    for evaluation in evaluations:
        if evaluation.by_lanes:
            rows = [(f"{lanes}-lane tracks", metrics) for lanes, metrics in evaluation.by_lanes.items()]
            lines += [f"## {evaluation.driver}: by lanes", "", markdown_table(rows), ""]
        lines += [f"## {evaluation.driver}: per track", "", markdown_table([(run.name, run.metrics) for run in evaluation.runs]), ""]
        picture = folder / f"{_slug(evaluation.driver)}.png"
        pictures[picture] = plot_runs(evaluation)
        lines += [f"![{evaluation.driver}]({picture.name})", ""]
    lines += ["Metrics are defined in docs/metrics.md.", ""]
    metrics = json.dumps({e.driver: e.to_dict() for e in evaluations}, indent=1, sort_keys=True, default=_json_default) + "\n"

    made = missing_folders(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # The earlier report goes first, wholly (its pictures of drivers the new one does not have would be
    # read as the new one's), and a write cut short (a full disk) takes back what it wrote: no report at all.
    earlier = _pictures_of_report(folder)
    for stale in [folder / "metrics.json", *(earlier - pictures.keys()), folder / "metrics.md"]:
        stale.unlink(missing_ok=True)
    files = {**pictures, folder / "metrics.md": "\n".join(lines).encode(), folder / "metrics.json": metrics.encode()}
    try:
        for path, data in files.items():  # metrics.json last
            write_atomically(path, data)
    except BaseException:
        for path in files:
            path.unlink(missing_ok=True)
        remove_empty_folders(made)
        raise
    return folder / "metrics.md"


def _pictures_of_report(folder: Path) -> set[Path]:
    """The pictures the report in `folder` (its metrics.json) drew, one per driver; none without a readable
    report. Another tool's metrics.json (any JSON object of that name) is no report: each of a report's
    values is an evaluation, with the keys `Evaluation.to_dict` gives it."""
    try:
        drivers = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return set()
    if not isinstance(drivers, dict):
        return set()
    evaluation_keys = {"driver", "overall", "tracks", "config"}
    return {folder / f"{_slug(driver)}.png" for driver, value in drivers.items()
            if isinstance(value, dict) and evaluation_keys <= value.keys() and value["driver"] == driver}


def plot_runs(evaluation: Evaluation) -> bytes:
    """A PNG: for each track: the map with the driven line coloured by driver, interventions and crashes ringed; the lateral offset over distance.

    With several looks, every look of a track is drawn over the same row, and the row's title lists each look's figures."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tracks = runs_by_track(evaluation)
    fig = Figure(figsize=(11, 3.2 * len(tracks)), dpi=80)  # not pyplot: its global back-end and figure list are the caller's
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(tracks), 2, gridspec_kw={"width_ratios": [1, 2.2]}, squeeze=False)
    for (map_ax, offset_ax), (track, runs) in zip(axes, tracks, strict=True):
        view = TopDownMap(track, (360, 360), margin=14)
        image = view.draw()
        labelled: set[DriverKind] = set()
        for run in runs:
            trace = run.trace
            draw_trail(view, image, trace)
            distance = trace.progress
            for kind, color in DRIVER_COLORS.items():
                mask = trace.driver == int(kind)
                if mask.any():
                    label = None if kind in labelled else kind.name.lower()
                    labelled.add(kind)
                    offset_ax.scatter(distance[mask], trace.lateral_offset[mask], s=1.5, color=np.array(color) / 255, label=label)
            starts = (trace.events & Event.INTERVENTION_START) != 0
            for d in distance[starts]:
                offset_ax.axvline(d, color=np.array(INTERVENTION_COLOR) / 255, lw=0.8)
        for run in runs:  # markers over every look's line
            _mark(view, image, run.trace, Event.INTERVENTION_START, INTERVENTION_COLOR)
            _mark(view, image, run.trace, Event.CRASH, CRASH_COLOR)
        map_ax.imshow(image)
        map_ax.set_axis_off()
        map_ax.set_title(track.name if len(runs) == 1 else f"{track.name} ({len(runs)} looks)", fontsize=9)
        offset_ax.axhline(0, color="gray", lw=0.5)
        offset_ax.set_xlabel("distance along the road [m]")
        offset_ax.set_ylabel("lateral offset [m]")
        autonomy = " / ".join(format_figure(run.metrics["autonomy_pct"], "{:.1f}") for run in runs)
        interventions = " + ".join(str(run.metrics["interventions"]) for run in runs)
        crashes = " + ".join(str(run.metrics["crashes"]) for run in runs)
        offset_ax.set_title(f"autonomy {autonomy}%  interventions {interventions}  crashes {crashes}", fontsize=9)
        offset_ax.legend(loc="upper right", fontsize=7, markerscale=4)
        offset_ax.grid(alpha=0.3)
    fig.suptitle(
        f"{evaluation.driver}: line blue = policy (the network), orange = expert; ring magenta = intervention, black = crash; "
        "red bar = start line, yellow arrow = direction",
        fontsize=9,
    )
    picture = io.BytesIO()
    with warnings.catch_warnings():
        # The title holds the model's path, whose characters (CJK, say) the font may lack: they are drawn as
        # boxes, and a warning for each would bury the metrics table printed beside the report.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        # Keep a strip of 0.45 inch at the top for the title: tight_layout alone lays the first row over it.
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))
        fig.savefig(picture, format="png")
    return picture.getvalue()


def draw_trail(view: TopDownMap, image: np.ndarray, trace: Any) -> None:
    """The driven line of `trace` on `view`'s `image`, coloured by who drove, broken where a crash reset the car."""
    colors = np.array([DRIVER_COLORS[DriverKind(int(d))] for d in trace.driver])
    points = np.column_stack([trace.x, trace.y])
    for part in trail_parts(trace.events):
        view.draw(trail=points[part], trail_colors=colors[part], image=image)


def trail_parts(events: np.ndarray) -> list[slice]:
    """Frame ranges of a trace to draw as separate lines: a crash puts the car back on the lane centre
    (the next frame carries EPISODE_RESET), and a line from the crash to that point was never driven."""
    breaks = (np.flatnonzero((np.asarray(events)[1:] & Event.EPISODE_RESET) != 0) + 1).tolist()
    edges = [0, *breaks, len(events)]
    return [slice(start, end) for start, end in zip(edges[:-1], edges[1:], strict=True)]


def runs_by_track(evaluation: Evaluation) -> list[tuple[Track, list[TrackRun]]]:
    """Each track with its runs, in track order, each track's looks in look order."""
    # By the Track object (identity: the runs of one track share it), not its name, which two files may share.
    tracks: dict[Track, list[TrackRun]] = {}
    for run in evaluation.runs:
        tracks.setdefault(run.track, []).append(run)
    return [(track, sorted(runs, key=lambda run: run.look)) for track, runs in tracks.items()]


def _mark(view: TopDownMap, image: np.ndarray, trace: Any, flag: Event, color: tuple[int, int, int]) -> None:
    hits = (trace.events & flag) != 0
    for px, py in view.to_pixels(np.column_stack([trace.x[hits], trace.y[hits]])):
        cv2.circle(image, (int(round(px)), int(round(py))), 5, color, 2, cv2.LINE_AA)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in Path(text).name or text).strip("-") or "driver"


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
