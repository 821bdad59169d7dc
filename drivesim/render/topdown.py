"""Top-down view of a track: for previews, the window's minimap and evaluation plots.

`TopDownMap` fits a track into an image once (the background: grass, road,
start line, direction arrow) and then draws cars and trails on a copy of it,
which is cheap enough to do every frame of an interactive window.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from drivesim.atomic import write_png
from drivesim.config import CarConfig
from drivesim.sim.car import CarState, footprint
from drivesim.track.geometry import Track

GRASS = (92, 140, 70)
ASPHALT = (70, 70, 74)
EDGE = (235, 235, 235)
START_LINE = (230, 40, 40)
ARROW = (250, 210, 60)
CAR = (40, 110, 240)


class TopDownMap:
    """A track drawn to fit an image of `size` = (width, height) pixels, north up."""

    def __init__(self, track: Track, size: tuple[int, int] = (400, 400), margin: int = 12, pixels_per_metre: float | None = None) -> None:
        self.track = track
        self.size = size
        xmin, ymin, xmax, ymax = track.bounds
        width, height = size
        if pixels_per_metre is None:
            pixels_per_metre = min((width - 2 * margin) / (xmax - xmin), (height - 2 * margin) / (ymax - ymin))
        self.pixels_per_metre = pixels_per_metre
        """Scale of the drawing [px/m]."""
        self._origin = np.array([(xmin + xmax) / 2, (ymin + ymax) / 2])
        self.background = self._draw_background()
        """(H, W, 3) RGB picture of the track alone."""

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) world points [m] to (..., 2) float pixel coordinates (x right, y down)."""
        points = np.asarray(points, dtype=np.float64)
        width, height = self.size
        px = (points[..., 0] - self._origin[0]) * self.pixels_per_metre + width / 2
        py = height / 2 - (points[..., 1] - self._origin[1]) * self.pixels_per_metre
        return np.stack([px, py], axis=-1)

    def _polyline(self, points: np.ndarray) -> np.ndarray:
        # cv2 draws with integer coordinates; 4 fractional bits keep thin lines smooth.
        return np.round(self.to_pixels(points) * 16).astype(np.int32)

    def _draw_background(self) -> np.ndarray:
        width, height = self.size
        image = np.empty((height, width, 3), dtype=np.uint8)
        image[:] = GRASS
        left, right = self.track.edges()
        line_width = max(1, int(round(0.3 * self.pixels_per_metre)))
        road_width_px = max(2, int(round(self.track.width * self.pixels_per_metre)))
        centre = self._polyline(np.vstack([self.track.centreline, self.track.centreline[:1]]))
        # A thick polyline is the road at any scale, even where it is narrower than a pixel.
        cv2.polylines(image, [centre], True, ASPHALT, road_width_px, cv2.LINE_AA, shift=4)
        if road_width_px > 6:
            for edge in (left, right):
                cv2.polylines(image, [self._polyline(edge)], True, EDGE, line_width, cv2.LINE_AA, shift=4)
        self._draw_start(image)
        return image

    def _draw_start(self, image: np.ndarray) -> None:
        track = self.track
        half = track.width / 2 + 2.0
        a, b = track.pose_at(0.0, half), track.pose_at(0.0, -half)
        thickness = max(2, int(round(1.5 * self.pixels_per_metre)))
        p0, p1 = self._polyline(np.array([[a.x, a.y], [b.x, b.y]]))
        cv2.line(image, tuple(p0), tuple(p1), START_LINE, thickness, cv2.LINE_AA, shift=4)
        # The arrow spans a fixed share of the picture so it reads at any scale.
        span = 0.12 * max(self.size) / self.pixels_per_metre
        tail, head = track.pose_at(0.0), track.pose_at(min(span, track.length / 4))
        t, h = self._polyline(np.array([[tail.x, tail.y], [head.x, head.y]]))
        cv2.arrowedLine(image, tuple(t), tuple(h), ARROW, max(2, thickness // 2), cv2.LINE_AA, shift=4, tipLength=0.35)

    def draw(
        self,
        car: CarState | None = None,
        car_config: CarConfig | None = None,
        trail: np.ndarray | None = None,
        trail_colors: np.ndarray | None = None,
        image: np.ndarray | None = None,
    ) -> np.ndarray:
        """The background with an optional trail ((N, 2) world points, per-point RGB colours) and the car."""
        image = self.background.copy() if image is None else image
        if trail is not None and len(trail) > 1:
            pixels = self._polyline(trail)
            if trail_colors is None:
                cv2.polylines(image, [pixels], False, CAR, 2, cv2.LINE_AA, shift=4)
            else:
                for i in range(len(pixels) - 1):
                    color = tuple(int(c) for c in trail_colors[i])
                    cv2.line(image, tuple(pixels[i]), tuple(pixels[i + 1]), color, 2, cv2.LINE_AA, shift=4)
        if car is not None:
            config = car_config or CarConfig()
            # Below a few pixels the true footprint vanishes: draw a marker at least that big.
            scale = max(1.0, 6.0 / (config.length * self.pixels_per_metre))
            corners = footprint(CarState(0.0, 0.0, car.yaw, 0.0), config) * scale + [car.x, car.y]
            cv2.fillPoly(image, [self._polyline(corners)], CAR, cv2.LINE_AA, shift=4)
        return image


def preview_tracks(tracks: list[Track], out: Path | str, tile: int = 360, columns: int | None = None) -> Path:
    """Save a PNG grid of top-down tracks, each labelled with its name, length, width and lanes."""
    columns = min(columns or 4, len(tracks))  # no empty columns: --columns 100000 once asked for a 36 GB sheet
    rows = -(-len(tracks) // columns)
    sheet = np.full((rows * tile, columns * tile, 3), 255, dtype=np.uint8)
    for i, track in enumerate(tracks):
        top_down = TopDownMap(track, (tile, tile), margin=28)
        view = top_down.draw()
        _draw_scale_bar(view, top_down.pixels_per_metre)  # each track fills its tile: the bar tells their sizes apart
        label = f"{track.name or 'track'}  {track.length:.0f} m  w {track.width:g} m  {track.lanes} lane{'s' * (track.lanes > 1)}"
        cv2.putText(view, label, (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        r, c = divmod(i, columns)
        sheet[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = view
        cv2.rectangle(sheet, (c * tile, r * tile), ((c + 1) * tile - 1, (r + 1) * tile - 1), (255, 255, 255), 2)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_png(out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def _draw_scale_bar(image: np.ndarray, pixels_per_metre: float) -> None:
    """A white bar of a round length (about a quarter of the picture's width) in its bottom-left corner."""
    height, width = image.shape[:2]
    target = width / 4 / pixels_per_metre
    metres = max((n for n in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if n <= target), default=10)
    length = int(round(metres * pixels_per_metre))
    x, y = 10, height - 12
    cv2.line(image, (x, y), (x + length, y), (255, 255, 255), 2, cv2.LINE_AA)
    for end in (x, x + length):
        cv2.line(image, (end, y - 4), (end, y + 4), (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(image, f"{metres} m", (x + length + 6, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
