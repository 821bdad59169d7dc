"""Benchmarks of drivesim's parts, one sub-command each.

    python scripts/benchmark.py render [--frames 3000] [--episodes 3]

`render` measures the camera: frames per second of the centre camera on one
core (OpenCV and numpy single-threaded), driving along generated tracks with
a fresh per-episode appearance for each randomization level, so per-episode
set-up costs are included. It also reports scene build time and memory.
Add a benchmark by writing a `cmd_<name>(args)` function and registering its
arguments in `build_parser`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# One core: set before numpy/OpenCV start their thread pools.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from drivesim.config import CameraConfig, RandomizationConfig, RigConfig, TrackConfig  # noqa: E402
from drivesim.render import CameraRig, build_scene, sample_appearance  # noqa: E402
from drivesim.sim.car import CarState  # noqa: E402
from drivesim.track import Track, generate_track  # noqa: E402


def drive_poses(track: Track, frames: int, rng: np.random.Generator, step: float = 1.0) -> list[CarState]:
    """Car poses along the right lane at `step` m per frame, weaving a little as a driver would."""
    s = rng.uniform(0, track.length) + step * np.arange(frames)
    lane = track.lane_center_offset(0)
    weave = 0.4 * np.sin(s / 23.0) + 0.2 * np.sin(s / 7.0 + 1.0)
    pose = track.pose_at(s, lane + weave)
    heading = 0.03 * np.sin(s / 11.0)
    return [CarState(float(x), float(y), float(yaw + h), 15.0) for x, y, yaw, h in zip(pose.x, pose.y, pose.yaw, heading, strict=True)]


def cmd_render(args: argparse.Namespace) -> None:
    cv2.setNumThreads(1)
    width, height = (int(v) for v in args.size.lower().split("x"))
    rig = CameraRig(RigConfig(cameras=("center",), camera=CameraConfig(width=width, height=height)))
    print(f"render benchmark: {width}x{height} centre camera, one core, {args.episodes} episodes x {args.frames} frames per level")

    scenes = []
    for episode in range(args.episodes):
        track = generate_track(args.seed + episode, TrackConfig(length=args.length, lanes=1 + episode % 2))
        start = time.perf_counter()
        scene = build_scene(track)
        scenes.append((scene, time.perf_counter() - start))
    for scene, seconds in scenes:
        track = scene.track
        print(f"  scene: {track.length:6.0f} m, {track.lanes} lane(s): built in {seconds:.2f} s, "
              f"{scene.nbytes() / 2**20:.0f} MiB, {len(scene.billboards.height)} billboards")

    for level in args.levels:
        config = RandomizationConfig.preset(level)
        rng = np.random.default_rng(args.seed)
        total_frames, total_time, look_time = 0, 0.0, 0.0
        for scene, _ in scenes:
            poses = drive_poses(scene.track, args.frames, rng)
            appearance = sample_appearance(config, rng)
            start = time.perf_counter()
            rig.render(scene, poses[0], appearance, rng)  # builds this episode's look and camera set-up
            look_time += time.perf_counter() - start
            start = time.perf_counter()
            for car in poses[1:]:
                rig.render(scene, car, appearance, rng)
            total_time += time.perf_counter() - start
            total_frames += len(poses) - 1
        fps = total_frames / total_time
        episode_ms = 1000 * look_time / len(scenes)
        print(f"  randomization {level:5s}: {fps:7.0f} frames/s ({1e6 / fps:.0f} us/frame); per-episode set-up {episode_ms:.0f} ms")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="camera frames per second on one core")
    render.add_argument("--frames", type=int, default=3000, help="frames per episode")
    render.add_argument("--episodes", type=int, default=3, help="episodes (each on its own generated track) per level")
    render.add_argument("--size", default="160x120", help="image size WxH")
    render.add_argument("--length", type=float, default=1500.0, help="track length [m]")
    render.add_argument("--levels", nargs="+", default=["none", "full"], choices=["none", "light", "full"])
    render.add_argument("--seed", type=int, default=0)
    render.set_defaults(func=cmd_render)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
