"""Benchmarks of drivesim's parts, one sub-command each; ratios are measured within one run.

    python scripts/benchmark.py render [--frames 3000] [--episodes 3]
    python scripts/benchmark.py generate [--frames 4000]     # one worker vs Gymnasium CarRacing-v3
    python scripts/benchmark.py setup [--tracks 12]          # per-shard scene and per-episode look set-up
    python scripts/benchmark.py compression [--frames 1000]  # image codecs: size, speed (zlib, libdeflate, Huffman-only, the writer's choice)
    python scripts/benchmark.py parallel [--frames 8000]     # two workers vs one
    python scripts/benchmark.py memory                       # peak RSS of a worker at 2k and 50k frames
    python scripts/benchmark.py loader [--recording DIR]     # torch DataLoader frames/s vs training frames/s
    python scripts/benchmark.py closedloop --model DIR       # network driving vs its forward pass alone
    python scripts/benchmark.py env [--steps 3000]           # the Gymnasium environment's steps/s vs CarRacing-v3

The CarRacing comparison needs `pip install gymnasium box2d` (not the
`gymnasium[box2d]` extra: it brings pygame-ce, which replaces pygame).

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
from arguments import at_least, positive  # noqa: E402  (scripts/arguments.py: this folder is on sys.path)

from drivesim.config import CameraConfig, RandomizationConfig, RigConfig, TrackConfig  # noqa: E402
from drivesim.errors import DrivesimError  # noqa: E402
from drivesim.processes import usable_cores  # noqa: E402
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

    build_scene(generate_track(args.seed + 10_000, TrackConfig(length=400)))  # first-call costs are not the first scene's
    scenes = []
    for episode in range(args.episodes):
        track = generate_track(args.seed + episode, TrackConfig(length=args.length, lanes=1 + episode % 2))
        start = time.perf_counter()
        scene = build_scene(track)
        scenes.append((scene, time.perf_counter() - start))
    for scene, seconds in scenes:
        track = scene.track
        print(f"  scene: {track.length:6.0f} m, {track.lanes} lane{'s' if track.lanes != 1 else ''}: built in {seconds:.2f} s, "
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


def _generate_once(frames: int, workers: int, randomize: str, folder: str, shard_frames: int = 1000, tracks: str = "tracks/train",
                   seed: int = 7, keep: bool = False) -> float:
    """Frames/s of `drivesim generate` (expert, 160x120 centre camera, gzip shards) into a fresh folder,
    removed afterwards unless `keep`."""
    import shutil

    from drivesim.config import GenerateConfig, NoiseConfig
    from drivesim.generate import generate

    shutil.rmtree(folder, ignore_errors=True)
    config = GenerateConfig(frames=frames, shard_frames=shard_frames, seed=seed, tracks=tracks, randomization=RandomizationConfig.preset(randomize), noise=NoiseConfig(steering_std=0.1))
    result = generate(config, folder, workers=workers, progress=False)
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return result.frames_per_second


def _recorded_episodes(folder: str, max_frames: int = 2000) -> list[list[np.ndarray]]:
    """The centre-camera frames of a recording folder's first shards (about `max_frames`, whole shards), episode by
    episode; the folder is removed. A cap, so a long run's frames need not all be in memory at once."""
    import shutil
    from pathlib import Path

    import h5py

    episodes: list[list[np.ndarray]] = []
    for shard in sorted(Path(folder).glob("shard-*.h5")):
        if sum(map(len, episodes)) >= max_frames:
            break
        with h5py.File(shard, "r") as f:
            images, ids = f["images/center"][...], f["meta/episode"][...]
        for episode in np.unique(ids):
            episodes.append([np.ascontiguousarray(image) for image in images[ids == episode]])
    shutil.rmtree(folder, ignore_errors=True)
    return episodes


def _generated_episodes(randomize: str, folder: str, frames: int = 1000) -> list[list[np.ndarray]]:
    """`frames` 160x120 centre-camera frames that `drivesim generate` makes at this randomization (seed 8,
    tracks/train), episode by episode, in shards of 100: one look (sensor noise included) per 100 frames."""
    _generate_once(frames, 1, randomize, folder, shard_frames=100, seed=8, keep=True)
    return _recorded_episodes(folder)


def _writer_streams(episodes: list[list[np.ndarray]]) -> list[bytes]:
    """The zlib streams the writer stores for these episodes' frames (without checksums): per episode,
    libdeflate or Huffman-only after probing its first frame."""
    from drivesim.record.chunk import CODECS, choose_image_codec

    streams = []
    for images in episodes:
        codec, first = choose_image_codec(images[0])
        streams += [first, *(CODECS[codec](image) for image in images[1:])]
    return streams


def _encoding_only_rate(episodes: list[list[np.ndarray]]) -> float:
    """Frames/s, one thread, of encoding these frames alone as the writer does (deflate and checksum): the
    ceiling of a one-core writer."""
    from drivesim.record.chunk import hdf5_fletcher32

    start = time.perf_counter()
    for stream in _writer_streams(episodes):
        hdf5_fletcher32(stream)
    return sum(map(len, episodes)) / (time.perf_counter() - start)


def car_racing_steps_per_second(steps: int) -> float | None:
    """Gymnasium CarRacing-v3 steps/s (it renders its 96x96 observation inside step), or None if not installed."""
    try:
        import gymnasium as gym
    except ImportError:
        print("  Gymnasium CarRacing-v3: not installed (pip install gymnasium box2d)")
        return None
    try:
        env = gym.make("CarRacing-v3")
    except Exception as error:  # gymnasium without box2d raises its DependencyNotInstalled
        print(f"  Gymnasium CarRacing-v3: unavailable ({type(error).__name__}: {error}; pip install box2d)")
        return None
    env.reset(seed=0)
    action = np.array([0.0, 0.3, 0.0], dtype=np.float32)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def cmd_generate(args: argparse.Namespace) -> None:
    import shutil
    import tempfile

    print(f"generation benchmark: one worker, expert (DART noise 0.1), 160x120 centre camera, gzip shards, {args.frames} frames")
    folder = tempfile.mkdtemp(prefix="bench-generate-")
    try:
        car_racing = car_racing_steps_per_second(args.car_racing_steps)
        if car_racing:
            print(f"  Gymnasium CarRacing-v3: {car_racing:.0f} steps/s")
        _generate_once(200, 1, args.levels[0], folder)  # first-call costs (imports, caches) would count against the first level
        for level in args.levels:
            fps = _generate_once(args.frames, 1, level, folder, keep=True)
            ratio = f" = {fps / car_racing:.1f}x CarRacing-v3" if car_racing else ""
            print(f"  randomization {level:5s}: {fps:6.0f} frames/s{ratio}")
            # The ceiling of any one-core writer: encoding the frames alone, with nothing simulated or rendered.
            episodes = _recorded_episodes(folder)
            fps = _encoding_only_rate(episodes)
            ratio = f" = {fps / car_racing:.1f}x CarRacing-v3" if car_racing else ""
            print(f"  randomization {level:5s}, the writer's deflate and checksum of the same frames alone (the first {sum(map(len, episodes))}), "
                  f"one core: {fps:6.0f} frames/s{ratio}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cmd_env(args: argparse.Namespace) -> None:
    """drivesim/Drive-v0 steps/s, resets included, driven by its own expert label, beside CarRacing-v3."""
    cv2.setNumThreads(1)
    import gymnasium

    import drivesim.env  # noqa: F401  (registers drivesim/Drive-v0)

    print(f"environment benchmark: {args.steps} steps per line, episodes of {args.max_steps} steps on {args.tracks}, one core")
    car_racing = car_racing_steps_per_second(args.car_racing_steps)
    if car_racing:
        print(f"  Gymnasium CarRacing-v3 (96x96 pixels): {car_racing:.0f} steps/s")
    cases = [("state", "none"), *(("pixels", level) for level in args.levels)]
    for obs_type, level in cases:
        env = gymnasium.make("drivesim/Drive-v0", tracks=args.tracks, obs_type=obs_type, randomize=level, max_episode_steps=args.max_steps)
        _, info = env.reset(seed=0)
        for _ in range(20):  # first-call costs (a scene, imports) would count against the first line
            _, _, terminated, truncated, info = env.step(info["expert_action"])
        _, info = env.reset(seed=1)
        start = time.perf_counter()
        for _ in range(args.steps):
            _, _, terminated, truncated, info = env.step(info["expert_action"])
            if terminated or truncated:
                _, info = env.reset()
        rate = args.steps / (time.perf_counter() - start)
        env.close()
        ratio = f" = {rate / car_racing:.1f}x CarRacing-v3" if car_racing else ""
        what = "state" if obs_type == "state" else f"pixels 160x120, randomization {level}"
        print(f"  drivesim/Drive-v0, {what}: {rate:8.0f} steps/s{ratio}")


def cmd_setup(args: argparse.Namespace) -> None:
    """What a shard and an episode cost before their first frame: a fresh track, its scene, a look."""
    from drivesim.generate import choose_track
    from drivesim.render.camera import camera_pose
    from drivesim.render.look import Look
    from drivesim.render.scene import _road_field
    from drivesim.render.sprites import make_sprites
    from drivesim.render.view import camera_setup

    cv2.setNumThreads(1)
    parts = {"track": 0.0, "scene": 0.0, "road field": 0.0, "sprites": 0.0}
    config = argparse.Namespace(tracks="random")
    build_scene(generate_track(0, TrackConfig()))  # first-call costs (imports, the shared detail texture) are not per shard
    looks, look_seconds = 0, 0.0
    for shard in range(args.tracks):
        rng = np.random.default_rng([args.seed, shard])  # as generate draws shard `shard`'s track
        start = time.perf_counter()
        track = choose_track(config, rng, None)
        parts["track"] += time.perf_counter() - start
        start = time.perf_counter()
        scene = build_scene(track)
        parts["scene"] += time.perf_counter() - start
        # The two largest parts, timed again on their own (the same work as inside build_scene).
        start = time.perf_counter()
        _road_field(track, scene.field_resolution, np.random.default_rng(0))
        parts["road field"] += time.perf_counter() - start
        start = time.perf_counter()
        make_sprites(np.random.default_rng(0))
        parts["sprites"] += time.perf_counter() - start
        camera, start_line = CameraConfig(), track.pose_at(0.0)
        car = CarState(float(start_line.x), float(start_line.y), float(start_line.yaw), 0.0)
        for _ in range(args.looks):
            appearance = sample_appearance(RandomizationConfig.preset("full"), rng)
            mounted = appearance.apply_to_camera(camera)
            start = time.perf_counter()
            look = Look(scene, appearance)
            camera_setup(look, mounted, camera_pose(car, mounted, 0.0))
            look_seconds += time.perf_counter() - start
            looks += 1
    per_track = {name: 1000 * seconds / args.tracks for name, seconds in parts.items()}
    print(f"set-up benchmark: {args.tracks} fresh random tracks as `generate --tracks random` draws them, one core")
    print(f"  per shard: track {per_track['track']:.0f} ms + scene {per_track['scene']:.0f} ms "
          f"(its two largest parts, timed again on their own: road field {per_track['road field']:.0f} ms, sprites {per_track['sprites']:.0f} ms)")
    print(f"  per episode (randomization full): look and camera set-up {1000 * look_seconds / looks:.0f} ms")


def cmd_compression(args: argparse.Namespace) -> None:
    import shutil
    import tempfile
    import zlib

    import deflate

    from drivesim.record.chunk import HUFFMAN_ONLY_MAX_GROWTH, IMAGE_DEFLATE_LEVEL, deflate_huffman_only

    def each(compress):
        return lambda episodes: [compress(image) for images in episodes for image in images]

    folder = tempfile.mkdtemp(prefix="bench-compression-")
    # Each codec deflates a list of episodes (lists of frames); only the writer's choice looks at episodes.
    codecs = [(f"zlib {level}", each(lambda image, level=level: zlib.compress(image, level))) for level in (1, 6)]
    codecs.append(("zlib Huffman", each(deflate_huffman_only)))
    codecs += [(f"libdeflate {level}", each(lambda image, level=level: deflate.zlib_compress(image, level))) for level in (1, 2, 6)]
    codecs.append(("writer", _writer_streams))
    try:  # for comparison only: ISA-L is faster, but its streams were not the same from process to process
        from isal import isal_zlib

        codecs += [(f"ISA-L {level}", each(lambda image, level=level: isal_zlib.compress(image, level))) for level in range(4)]
    except ImportError:
        print("  (ISA-L: not installed; pip install isal to compare)")
    print(f"image compression: {args.frames} generated 160x120 frames per randomization, one core; the writer deflates "
          f"each episode with libdeflate {IMAGE_DEFLATE_LEVEL}, or zlib's Huffman coding alone where that costs its first frame "
          f"at most {HUFFMAN_ONLY_MAX_GROWTH:.0%} more bytes")
    print("  randomization  codec         KiB/frame  compress frames/s  inflate (zlib) frames/s")
    try:
        _compare_codecs(args, codecs, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _compare_codecs(args: argparse.Namespace, codecs: list, folder: str) -> None:
    import zlib

    for randomize in args.levels:
        episodes = _generated_episodes(randomize, folder, args.frames)
        images = [image for frames in episodes for image in frames]
        for name, compress in codecs:
            start = time.perf_counter()
            streams = compress(episodes)
            rate = len(images) / (time.perf_counter() - start)
            assert all(zlib.decompress(stream) == image.tobytes() for stream, image in zip(streams, images, strict=True))
            start = time.perf_counter()
            for stream in streams:
                zlib.decompress(stream)
            inflate = len(streams) / (time.perf_counter() - start)
            size = sum(map(len, streams)) / len(streams) / 1024
            print(f"  {randomize:13s}  {name:12s} {size:10.1f}  {rate:17.0f}  {inflate:23.0f}")


def cmd_parallel(args: argparse.Namespace) -> None:
    import shutil
    import tempfile

    if args.frames <= args.shard_frames:
        raise DrivesimError(f"--frames {args.frames} in shards of {args.shard_frames} is one shard, which generate writes in one process: "
                            "give at least two shards' worth")
    folder = tempfile.mkdtemp(prefix="bench-parallel-")
    print(f"parallel benchmark: {args.frames} frames in shards of {args.shard_frames}, randomization {args.randomize}, tracks {args.tracks}")
    # Alternating and keeping the best of each: a shared machine's speed drifts by tens of per cent.
    ones, twos = [], []
    try:
        _generate_once(min(args.frames, 200), 1, args.randomize, folder, args.shard_frames, args.tracks)  # first-call costs
        for _ in range(args.repeats):
            ones.append(_generate_once(args.frames, 1, args.randomize, folder, args.shard_frames, args.tracks))
            twos.append(_generate_once(args.frames, 2, args.randomize, folder, args.shard_frames, args.tracks))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    one, two = max(ones), max(twos)
    runs = f" (best of {args.repeats}: {', '.join(f'{x:.0f}' for x in ones)} / {', '.join(f'{x:.0f}' for x in twos)})"
    print(f"  1 worker:  {one:6.0f} frames/s\n  2 workers: {two:6.0f} frames/s = {two / one:.2f}x{runs}")


_MEMORY_CHILD = """
import resource, sys, tempfile
from drivesim.config import GenerateConfig, NoiseConfig, RandomizationConfig
from drivesim.generate import generate
frames = int(sys.argv[1])
config = GenerateConfig(frames=frames, shard_frames=1000, seed=7, tracks=sys.argv[3], randomization=RandomizationConfig.preset(sys.argv[2]), noise=NoiseConfig(steering_std=0.1))
with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:  # 50k frames are gigabytes: never left behind
    generate(config, folder + "/rec", workers=1, progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def cmd_memory(args: argparse.Namespace) -> None:
    import shutil
    import subprocess
    import tempfile

    from drivesim.track import load_tracks, save_track

    # A worker's peak is set by the largest scene it builds, so a run that meets a longer track peaks higher
    # without any leak. Growth with frames is measured on one track (the longest bundled training track);
    # the mixed-track line shows what a real run over tracks/train peaks at.
    longest = max(load_tracks("tracks/train"), key=lambda t: t.length)
    one_track = tempfile.mkdtemp(prefix="bench-memory-track-")
    try:
        save_track(longest, f"{one_track}/{longest.name}.json")
        print(f"memory benchmark: peak RSS of one generation worker (its own process), randomization {args.randomize}")
        for label, tracks in ((f"one track ({longest.name}, {longest.length:.0f} m)", one_track), ("tracks/train", "tracks/train")):
            peaks = []
            for frames in args.frames:
                start = time.perf_counter()
                out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(frames), args.randomize, tracks], capture_output=True, text=True)
                if out.returncode != 0:
                    sys.stderr.write(out.stderr)
                    raise DrivesimError(f"the {frames}-frame generation run failed (its output is above)")
                peak_mib = int(out.stdout.split()[-1]) / 1024
                peaks.append(peak_mib)
                print(f"  {label}: {frames:6d} frames: peak {peak_mib:6.0f} MiB ({time.perf_counter() - start:.0f} s)")
            print(f"  {label}: largest / smallest: {max(peaks) / min(peaks):.3f}")
    finally:
        shutil.rmtree(one_track, ignore_errors=True)


def cmd_loader(args: argparse.Namespace) -> None:
    import shutil
    import tempfile

    made = tempfile.mkdtemp(prefix="bench-loader-") if args.recording is None else None
    try:
        _loader_rates(args, args.recording or made + "/rec", generate_first=made is not None)
    finally:
        if made:  # the recording this benchmark made for itself
            shutil.rmtree(made, ignore_errors=True)


def _loader_rates(args: argparse.Namespace, recording: str, generate_first: bool) -> None:
    import torch

    from drivesim.learn import AugmentConfig, ModelConfig, Preprocessing, build_model
    from drivesim.learn.train import TrainingFrames
    from drivesim.record import RecordingDataset

    if generate_first:
        from drivesim.config import GenerateConfig
        from drivesim.generate import generate

        generate(GenerateConfig(frames=args.frames, seed=3, tracks="tracks/train"), recording, progress=False)
    torch.set_num_threads(usable_cores())
    base = RecordingDataset(recording)
    frames = TrainingFrames(base, Preprocessing(), AugmentConfig(), ("center",), AugmentConfig().side_camera_correction)
    print(f"loader benchmark: {len(base)} frames of {recording}, batch 64, shuffled; the loader and the training steps are "
          "timed one after the other, each with the machine to itself (in training they share it)")
    for name, dataset in (("raw uint8 frames", base), ("training pipeline (augment + preprocess)", frames)):
        loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True, num_workers=args.workers, persistent_workers=False)
        start, count = time.perf_counter(), 0
        for batch in loader:
            count += len(batch[0])
        print(f"  DataLoader, {args.workers} workers, {name}: {count / (time.perf_counter() - start):6.0f} frames/s")
    model = build_model(ModelConfig(args.model), (66, 200))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    inputs, targets = torch.randn(64, 3, 66, 200), torch.randn(64, 1)
    for _ in range(3):
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
    start, steps = time.perf_counter(), 20
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()
    print(f"  {args.model} training steps alone (batch 64, {torch.get_num_threads()} threads): {steps * 64 / (time.perf_counter() - start):6.0f} frames/s")


class BatchLog:
    """Passes `act_batch` on to a policy; keeps the size of every batch and the seconds spent in it."""

    def __init__(self, policy) -> None:
        self.policy = policy
        self.kind = policy.kind
        self.sizes: list[int] = []
        self.seconds = 0.0

    def reset(self, world) -> None:
        self.policy.reset(world)

    def act_batch(self, worlds, frames):
        self.sizes.append(len(worlds))
        start = time.perf_counter()
        controls = self.policy.act_batch(worlds, frames)
        self.seconds += time.perf_counter() - start
        return controls


def _network_alone_seconds(model: str, batch: int, rounds: int) -> float:
    """Seconds one process with one torch thread takes for `rounds` forward passes on `batch` frames (after a
    warm-up pass): a spawned process's share of the network-alone reference for `drivesim eval`'s processes."""
    import torch

    from drivesim.drivers.policy import PolicyDriver

    torch.set_num_threads(1)
    policy = PolicyDriver(model)
    images = np.stack([np.random.default_rng(i).integers(0, 256, (120, 160, 3), dtype=np.uint8) for i in range(batch)])
    policy.predict(images)
    start = time.perf_counter()
    for _ in range(rounds):
        policy.predict(images)
    return time.perf_counter() - start


def _network_alone_in_processes(model: str, processes: int, batch: int, rounds: int) -> float:
    """Frames/s of the network alone in `processes` single-thread processes running at once, as many as
    `drivesim eval` starts: on this machine that beats one process with torch on every core."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        seconds = list(pool.map(_network_alone_seconds, [model] * processes, [batch] * processes, [rounds] * processes))
    return processes * batch * rounds / max(seconds)


def cmd_closedloop(args: argparse.Namespace) -> None:
    import torch

    from drivesim.drivers.policy import PolicyDriver
    from drivesim.evaluate import EvalConfig, evaluate
    from drivesim.track import load_tracks

    cv2.setNumThreads(1)
    # As in a single lock-step loop: torch uses every core (this script pins numpy and OpenCV to one).
    cores = usable_cores()
    policy = PolicyDriver(args.model)
    tracks = len(load_tracks(args.tracks))
    config = EvalConfig(tracks=args.tracks, laps=args.laps, randomization=RandomizationConfig.preset("light"))
    images = np.stack([np.random.default_rng(i).integers(0, 256, (120, 160, 3), dtype=np.uint8) for i in range(tracks)])

    def loop() -> tuple[float, BatchLog, int]:
        torch.set_num_threads(cores)
        logged = BatchLog(policy)
        start = time.perf_counter()
        frames = evaluate(logged, config, name="bench").overall["frames"]
        return time.perf_counter() - start, logged, frames

    def replay(sizes: list[int]) -> float:
        """Seconds the network alone takes for the loop's own batches, in the same order: the lock-step batch
        shrinks as shorter tracks finish, and a small batch costs more per frame, so a fixed full batch would
        not be the same work."""
        torch.set_num_threads(cores)
        policy.predict(images)
        start = time.perf_counter()
        for size in sizes:
            policy.predict(images[:size])
        return time.perf_counter() - start

    def fixed_batch_rate(threads: int) -> float:
        torch.set_num_threads(threads)
        policy.predict(images)
        start, rounds = time.perf_counter(), 200
        for _ in range(rounds):
            policy.predict(images)
        return rounds * tracks / (time.perf_counter() - start)

    # This machine's speed drifts by tens of percent over minutes, so loop and replay alternate and
    # the best of each counts.
    loop_seconds, network_seconds = np.inf, np.inf
    for _ in range(args.repeats):
        seconds, logged, frames = loop()
        loop_seconds = min(loop_seconds, seconds)
        network_seconds = min(network_seconds, replay(logged.sizes))
    sizes = logged.sizes
    policy_frames = sum(sizes)
    loop_rate, network_rate = frames / loop_seconds, policy_frames / network_seconds
    print(f"closed-loop benchmark: {args.model}, {tracks} tracks in lock-step, {args.laps:g} laps each, {cores} torch threads, best of {args.repeats}")
    print(f"  closed loop (render + network + expert labels + physics): {loop_rate:6.0f} frames/s over {frames} frames")
    print(f"  network alone on the loop's {len(sizes)} batches ({policy_frames} frames, mean batch {policy_frames / len(sizes):.1f}): {network_rate:6.0f} frames/s")
    print(f"  ratio: {loop_rate / network_rate:.2f}")
    print(f"  (network alone on full batches of {tracks}: {fixed_batch_rate(cores):.0f} frames/s; one thread: {fixed_batch_rate(1):.0f})")
    # Where the rest goes: the loop runs the network and the simulator one after the other on the same cores.
    network_ms, loop_ms, inside_ms = (1e3 * t / frames for t in (network_seconds, loop_seconds, logged.seconds))
    print(f"  per frame: {loop_ms:.2f} ms in the loop = {network_ms:.2f} ms network + {loop_ms - network_ms:.2f} ms rendering, physics, expert labels, set-up")
    print(f"  (the network's calls inside the last loop took {inside_ms:.2f} ms per frame)")
    if cores > 1 and tracks > 1:
        # What `drivesim eval` does by default: the tracks shared out to one lock-step process per core.
        torch.set_num_threads(cores)  # as before the one-thread rate above; the processes set their own
        start = time.perf_counter()
        shared = evaluate(policy, config, name="bench", workers=cores).overall["frames"]
        rate = shared / (time.perf_counter() - start)
        processes = min(cores, tracks)
        # Each process drives its share in lock-step with one torch thread, so its batch is at most
        # tracks / processes; the network alone does best the same way (one thread per core beats one
        # process using every core), and that is the stricter reference.
        batch = -(-tracks // processes)
        alone = _network_alone_in_processes(args.model, processes, batch, rounds=max(50, 3000 // batch))
        print(f"  eval with the tracks shared out to {processes} processes ({cores // processes} torch thread(s) each): {rate:6.0f} frames/s = "
              f"{rate / loop_rate:.2f}x the single lock-step loop = {rate / network_rate:.2f} of the network alone in one process")
        print(f"  network alone in {processes} one-thread processes at once, batches of {batch}: {alone:6.0f} frames/s; "
              f"eval's processes = {rate / alone:.2f} of that")


def image_size(text: str) -> str:
    """An argparse type: WxH, as 160x120."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and 16 <= int(p) <= 4096 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not WxH with each side in [16, 4096], as 160x120")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="camera frames per second on one core")
    render.add_argument("--frames", type=at_least(2), default=3000, help="frames per episode")
    render.add_argument("--episodes", type=at_least(1), default=3, help="episodes (each on its own generated track) per level")
    render.add_argument("--size", type=image_size, default="160x120", help="image size WxH")
    render.add_argument("--length", type=positive, default=1500.0, help="track length [m]")
    render.add_argument("--levels", nargs="+", default=["none", "full"], choices=["none", "light", "full"])
    render.add_argument("--seed", type=int, default=0)
    render.set_defaults(func=cmd_render)

    gen = commands.add_parser("generate", help="one generation worker vs Gymnasium CarRacing-v3")
    gen.add_argument("--frames", type=at_least(1), default=4000)
    gen.add_argument("--levels", nargs="+", default=["none", "full"], choices=["none", "light", "full"])
    gen.add_argument("--car-racing-steps", type=at_least(1), default=1000)
    gen.set_defaults(func=cmd_generate)

    setup = commands.add_parser("setup", help="per-shard (track, scene) and per-episode (look) set-up time")
    setup.add_argument("--tracks", type=at_least(1), default=12, help="fresh random tracks")
    setup.add_argument("--looks", type=at_least(1), default=2, help="full-randomization looks per track")
    setup.add_argument("--seed", type=int, default=0)
    setup.set_defaults(func=cmd_setup)
    comp = commands.add_parser("compression", help="size and speed of the image codecs on generated frames")
    comp.add_argument("--frames", type=at_least(1), default=1000)
    comp.add_argument("--levels", nargs="+", choices=["none", "light", "full"], default=["none", "full"])
    comp.set_defaults(func=cmd_compression)

    par = commands.add_parser("parallel", help="two generation workers vs one")
    par.add_argument("--frames", type=at_least(2), default=8000)
    par.add_argument("--shard-frames", type=at_least(1), default=500)
    par.add_argument("--randomize", default="full", choices=["none", "light", "full"])
    par.add_argument("--repeats", type=at_least(1), default=3, help="alternating runs of each; the best counts")
    par.add_argument("--tracks", default="tracks/train", help="a track pool (its shards share scenes per process) or random (a scene per shard)")
    par.set_defaults(func=cmd_parallel)

    mem = commands.add_parser("memory", help="peak RSS of a generation worker as frames grow")
    mem.add_argument("--frames", type=at_least(1), nargs="+", default=[2000, 50000])
    mem.add_argument("--randomize", default="full", choices=["none", "light", "full"])
    mem.set_defaults(func=cmd_memory)

    loader = commands.add_parser("loader", help="torch DataLoader frames/s vs training frames/s")
    loader.add_argument("--recording", default=None, help="recording folder (default: generate one)")
    loader.add_argument("--frames", type=at_least(1), default=4000, help="frames to generate when no --recording")
    loader.add_argument("--workers", type=at_least(0), default=2)
    loader.add_argument("--model", default="pilotnet", choices=["pilotnet", "small"])
    loader.set_defaults(func=cmd_loader)

    closed = commands.add_parser("closedloop", help="closed-loop frames/s with a network driving vs its forward pass alone")
    closed.add_argument("--model", required=True, help="checkpoint folder or file")
    closed.add_argument("--tracks", default="tracks/holdout")
    closed.add_argument("--laps", type=positive, default=1.0, help="laps per track (fewer laps weigh per-track set-up more)")
    closed.add_argument("--repeats", type=at_least(1), default=2, help="loop and replay alternate this many times; the best of each counts")
    closed.set_defaults(func=cmd_closedloop)

    env = commands.add_parser("env", help="the Gymnasium environment's steps/s vs CarRacing-v3")
    env.add_argument("--steps", type=at_least(1), default=3000, help="steps timed per line")
    env.add_argument("--max-steps", type=at_least(1), default=1000, help="episode length in steps (resets are timed too)")
    env.add_argument("--tracks", default="tracks/train", help="a track pool (scenes kept) or random (a fresh track and scene per episode)")
    env.add_argument("--levels", nargs="+", default=["none", "full"], choices=["none", "light", "full"], help="randomization levels of the pixel lines")
    env.add_argument("--car-racing-steps", type=at_least(1), default=1000)
    env.set_defaults(func=cmd_env)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except DrivesimError as error:  # a missing model, tracks or recording: the user's to fix, not a bug
        sys.exit(f"benchmark.py: error: {error}")


if __name__ == "__main__":
    main(sys.argv[1:])
