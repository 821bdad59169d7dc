"""Sample camera frames for docs/: what the renderer's product looks like.

    python scripts/make_render_figures.py [--out docs]

Writes
  frames-grid.png            160x120 frames over several tracks (rows) and randomizations (columns)
  rig-left-center-right.png  the PilotNet camera triple at one pose
  distance-filtering.png     a short drive, with and without distance filtering, far road enlarged
  frame-800x600.png          one large frame, for the near-field detail
Small frames are enlarged with nearest-neighbour so their pixels stay visible.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from drivesim.config import CameraConfig, RandomizationConfig, RigConfig, TrackConfig
from drivesim.render import REFERENCE, CameraRig, Scene, build_scene, camera_pose, sample_appearance
from drivesim.render.camera import row_ground_distance
from drivesim.render.look import Look
from drivesim.render.view import render_look
from drivesim.sim.car import CarState
from drivesim.track import generate_track

TRACKS = [
    ("1 lane, 7 m", 21, TrackConfig(length=900, lanes=1, width=7.0, curviness=0.5)),
    ("2 lanes, 8 m", 4, TrackConfig(length=1500, lanes=2, width=8.0, curviness=0.6)),
    ("2 lanes, 11 m", 7, TrackConfig(length=2500, lanes=2, width=11.0, curviness=0.3)),
    ("1 lane, 5 m, curvy", 13, TrackConfig(length=700, lanes=1, width=5.0, curviness=0.9, min_radius=20.0)),
]
COLUMNS = [("none", 0), ("light", 1), ("full", 2), ("full", 3), ("full", 4)]


def car_at(scene: Scene, s: float, lateral: float = 0.0, heading: float = 0.0) -> CarState:
    """The car in lane 0 at progress `s` [m], `lateral` [m] left of the lane centre, yawed `heading` [rad]."""
    pose = scene.track.pose_at(s, scene.track.lane_center_offset(0) + lateral)
    return CarState(float(pose.x), float(pose.y), float(pose.yaw) + heading, 0.0)


def bend_ahead(scene: Scene, rng: np.random.Generator) -> float:
    """A progress [m] with a bend 20-60 m ahead: the frames people look at are rarely dead straight."""
    track = scene.track
    bends = track.s[np.abs(track.curvature) > 1 / 150]
    return float(rng.choice(bends) - rng.uniform(20, 60)) if len(bends) else float(rng.uniform(0, track.length))


def enlarge(frame: np.ndarray, factor: int) -> np.ndarray:
    return cv2.resize(frame, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


def label(image: np.ndarray, text: str, height: int = 26) -> np.ndarray:
    """`image` with a white caption strip on top."""
    strip = np.full((height, image.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text, (6, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([strip, image])


def pad(image: np.ndarray, border: int = 4) -> np.ndarray:
    return cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_CONSTANT, value=(255, 255, 255))


def save(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):  # OpenCV warns and returns False
        sys.exit(f"make_render_figures.py: error: could not write {path}")
    print(f"wrote {path} ({image.shape[1]}x{image.shape[0]})")


def frames_grid(scenes: list[tuple[str, Scene]], out: Path) -> None:
    rig = CameraRig()
    rows = []
    for row, (name, scene) in enumerate(scenes):
        rng = np.random.default_rng(100 + row)
        car = car_at(scene, bend_ahead(scene, rng), lateral=rng.uniform(-0.3, 0.3))
        tiles = []
        for level, seed in COLUMNS:
            appearance = sample_appearance(RandomizationConfig.preset(level), np.random.default_rng(seed * 31 + row))
            frame = rig.render(scene, car, appearance, np.random.default_rng(seed))["center"]
            tiles.append(pad(label(enlarge(frame, 2), f"{name} | {level}")))
        rows.append(np.hstack(tiles))
    save(out / "frames-grid.png", np.vstack(rows))


def rig_triple(scene: Scene, out: Path) -> None:
    rig = CameraRig(RigConfig(cameras=("left", "center", "right")))
    car = car_at(scene, bend_ahead(scene, np.random.default_rng(5)))
    frames = rig.render(scene, car, REFERENCE)
    offsets = {name: rig.lateral_shift(name) for name in frames}
    tiles = [pad(label(enlarge(frames[name], 3), f"{name} camera ({offsets[name]:+.1f} m left)")) for name in ("left", "center", "right")]
    save(out / "rig-left-center-right.png", np.hstack(tiles))


def distance_filtering(scene: Scene, out: Path) -> None:
    camera = CameraConfig()
    start = bend_ahead(scene, np.random.default_rng(2)) - 30
    distance = row_ground_distance(camera, np.arange(camera.height))
    far = np.flatnonzero((distance > 12) & (distance < 120))
    band = slice(int(far[0]) - 2, int(far[-1]) + 3)
    blocks = []
    for filtered in (True, False):
        look = Look(scene, REFERENCE, filtered=filtered)
        frames, crops = [], []
        for step in range(6):
            car = car_at(scene, start + 0.37 * step)
            frame = render_look(look, camera, camera_pose(car, camera), np.random.default_rng(0))
            frames.append(pad(enlarge(frame, 2), 2))
            crops.append(pad(enlarge(frame[band, 40:120], 4), 2))
        title = "with distance filtering (per-pixel footprint, mip levels)" if filtered else "without filtering (point sampling)"
        blocks.append(label(np.hstack(frames), f"{title}: 6 frames, 0.37 m apart"))
        steady = "lines stay whole and steady" if filtered else "lines break into dots that change from frame to frame"
        blocks.append(label(np.hstack(crops), f"far road (12-120 m) enlarged 4x: {steady}"))
    save(out / "distance-filtering.png", np.vstack(blocks))


def large_frame(scene: Scene, out: Path) -> None:
    rig = CameraRig(RigConfig(camera=CameraConfig(width=800, height=600)))
    car = car_at(scene, bend_ahead(scene, np.random.default_rng(9)))
    appearance = sample_appearance(RandomizationConfig(level="full", sensor=False), np.random.default_rng(12))
    save(out / "frame-800x600.png", rig.render(scene, car, appearance)["center"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    scenes = [(name, build_scene(generate_track(seed, config))) for name, seed, config in TRACKS]
    frames_grid(scenes, args.out)
    rig_triple(scenes[1][1], args.out)
    distance_filtering(scenes[1][1], args.out)
    large_frame(scenes[2][1], args.out)


if __name__ == "__main__":
    main()
