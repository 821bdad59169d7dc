"""Evaluation reports: metric tables (JSON, Markdown) and pictures of how each track was driven."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from drivesim.drivers.base import DriverKind
from drivesim.evaluate import Evaluation
from drivesim.record.schema import Event
from drivesim.render.topdown import TopDownMap

DRIVER_COLORS = {DriverKind.EXPERT: (245, 150, 30), DriverKind.POLICY: (40, 110, 240), DriverKind.HUMAN: (170, 60, 200)}
"""Trajectory colour (RGB) by who was driving."""

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


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return fmt.format(value)


def markdown_table(rows: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """A Markdown table with one row per (name, metrics)."""
    header = "| | " + " | ".join(title for _, title, _ in TABLE_COLUMNS) + " |"
    rule = "|---" * (len(TABLE_COLUMNS) + 1) + "|"
    body = ["| " + name + " | " + " | ".join(_cell(metrics.get(key), fmt) for key, _, fmt in TABLE_COLUMNS) + " |" for name, metrics in rows]
    return "\n".join([header, rule, *body])


def write_report(evaluations: Sequence[Evaluation], folder: Path | str) -> Path:
    """metrics.json, metrics.md and one PNG per evaluation (trajectories and lateral offsets) in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps({e.driver: e.to_dict() for e in evaluations}, indent=1, sort_keys=True, default=_json_default) + "\n")
    lines = ["# Closed-loop evaluation", "", "## Overall", "", markdown_table([(e.driver, e.overall) for e in evaluations]), ""]
    for evaluation in evaluations:
        lines += [f"## {evaluation.driver}: per track", "", markdown_table([(run.name, run.metrics) for run in evaluation.runs]), ""]
        picture = folder / f"{_slug(evaluation.driver)}.png"
        plot_runs(evaluation, picture)
        lines += [f"![{evaluation.driver}]({picture.name})", ""]
    lines += ["Metrics are defined in docs/metrics.md.", ""]
    (folder / "metrics.md").write_text("\n".join(lines))
    return folder / "metrics.md"


def plot_runs(evaluation: Evaluation, path: Path) -> None:
    """For each track: the map with the driven line coloured by driver, interventions (yellow) and crashes (red); the lateral offset over distance.

    With several looks, only look 0 is drawn (the tables have them all)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [run for run in evaluation.runs if run.look == 0]
    fig, axes = plt.subplots(len(runs), 2, figsize=(11, 3.2 * len(runs)), dpi=80, gridspec_kw={"width_ratios": [1, 2.2]}, squeeze=False)
    for (map_ax, offset_ax), run in zip(axes, runs, strict=True):
        trace = run.trace
        view = TopDownMap(run.track, (360, 360), margin=14)
        colors = np.array([DRIVER_COLORS[DriverKind(int(d))] for d in trace.driver])
        image = view.draw(trail=np.column_stack([trace.x, trace.y]), trail_colors=colors)
        _mark(view, image, trace, Event.INTERVENTION_START, (250, 220, 40))
        _mark(view, image, trace, Event.CRASH, (230, 30, 30))
        map_ax.imshow(image)
        map_ax.set_axis_off()
        map_ax.set_title(run.name, fontsize=9)
        distance = trace.progress
        for kind, color in DRIVER_COLORS.items():
            mask = trace.driver == int(kind)
            if mask.any():
                offset_ax.scatter(distance[mask], trace.lateral_offset[mask], s=1.5, color=np.array(color) / 255, label=kind.name.lower())
        starts = (trace.events & Event.INTERVENTION_START) != 0
        for d in distance[starts]:
            offset_ax.axvline(d, color="goldenrod", lw=0.8)
        offset_ax.axhline(0, color="gray", lw=0.5)
        offset_ax.set_xlabel("distance along the road [m]")
        offset_ax.set_ylabel("lateral offset [m]")
        metrics = run.metrics
        offset_ax.set_title(
            f"autonomy {_cell(metrics['autonomy_pct'], '{:.1f}')}%  interventions {metrics['interventions']}  crashes {metrics['crashes']}", fontsize=9
        )
        offset_ax.legend(loc="upper right", fontsize=7, markerscale=4)
        offset_ax.grid(alpha=0.3)
    fig.suptitle(f"{evaluation.driver}: blue = network, orange = expert, yellow = intervention, red = crash", fontsize=10)
    # Keep a strip of 0.45 inch at the top for the title: tight_layout alone lays the first row over it.
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))
    fig.savefig(path)
    plt.close(fig)


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
