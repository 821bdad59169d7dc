"""Headless mass generation: many expert episodes -> a recording folder of shards.

A run is cut into shards of `shard_frames` frames. Shard i is a unit of work
that depends only on (run seed, i): it picks its track, then drives episodes
on it (each from a random start, with its own appearance and noise) until it
holds its frames. So the recording is byte-identical whatever the number of
workers (on one machine with the same packages; the pixels and labels are
the same everywhere), and an interrupted run resumes by redoing only the
shards that are missing. The manifest is written last.

With a track pool, a process is handed the shards of one track together and
keeps its last scene for the next shard on the same track, so a scene is
built about once per track instead of once per shard.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from drivesim import __version__
from drivesim.atomic import writing_alone
from drivesim.config import EPISODES_PER_SHARD_MAX, EpisodeConfig, GenerateConfig, to_dict
from drivesim.drivers import ExpertDriver, NoisyDriver
from drivesim.errors import DrivesimError
from drivesim.loop import run_episode
from drivesim.processes import WORKER_DIED, report_progress, run_in_workers, stop_requested, usable_cores
from drivesim.record import (
    RecordingError,
    ShardInfo,
    ShardWriter,
    read_manifest,
    shard_info_from_file,
    shard_name,
    write_manifest,
)
from drivesim.record.manifest import MANIFEST_NAME
from drivesim.record.reader import file_sha256
from drivesim.render.frame_source import RigView
from drivesim.render.scene import Scene, build_scene
from drivesim.sim import World
from drivesim.track import (
    RANDOM_TRACK_SEEDS,
    Track,
    TrackError,
    generate_track,
    load_tracks,
    random_track_config,
    track_set_sha256,
)


class GenerateError(DrivesimError):
    """The output folder or the request cannot be used as asked."""


@dataclass(frozen=True)
class ShardJob:
    """One unit of work: shard `index` with `frames` frames."""

    index: int
    frames: int


def plan_shards(config: GenerateConfig) -> list[ShardJob]:
    """The shards a run consists of; the last one holds the remainder."""
    count = math.ceil(config.frames / config.shard_frames)
    return [ShardJob(i, min(config.shard_frames, config.frames - i * config.shard_frames)) for i in range(count)]


DIGEST_KEYS = ("policy_sha256", "tracks_sha256")
"""Keys `config_fingerprint` adds to a run's config fields: the policy's weights and the track pool's files."""


def config_fingerprint(config: GenerateConfig) -> dict[str, Any]:
    """The config as stored in shards and manifest (JSON-normalized: tuples become lists), with the SHA-256 of
    the track files of a track pool and of the policy's weights when a policy drives; fingerprints that
    `same_config` accepts make the same bytes."""
    fingerprint = json.loads(json.dumps(to_dict(config)))
    if config.tracks != "random":  # the same folder name can hold other tracks by the time a run is resumed
        fingerprint["tracks_sha256"] = track_set_sha256(config.tracks)
    if config.policy:
        from drivesim.learn.checkpoint import resolve  # torch: a policy-driven run loads it anyway

        try:
            fingerprint["policy_sha256"] = file_sha256(resolve(config.policy))
        except OSError as error:
            raise GenerateError(f"cannot read the policy checkpoint {config.policy}: {error.strerror or error}") from None
    return fingerprint


def same_config(stored: Any, fingerprint: dict[str, Any]) -> bool:
    """Whether a recording's stored config is the run `fingerprint` describes, so its shards can be kept.
    A policy is the same by its weights, wherever its file lies (kept shards keep the path they were made
    with), so a moved run folder still resumes; recordings from before the digest was stored compare the
    policy's weights file path, resolved. A track pool is likewise the same by its files where both
    recorded their digest (`tracks/train/`, `./tracks/train` and its absolute path are one pool), and
    must hold the same files then."""
    if not isinstance(stored, dict):  # None, or a shard's config attribute that is not a JSON object
        return False
    old, new = dict(stored), dict(fingerprint)
    old_path, new_path = old.pop("policy", None), new.pop("policy", None)
    old_digest, new_digest = old.pop("policy_sha256", None), new.pop("policy_sha256", None)
    old_tracks, new_tracks = old.pop("tracks_sha256", None), new.pop("tracks_sha256", None)
    if old_tracks and new_tracks:
        if old_tracks != new_tracks:
            return False
        del old["tracks"], new["tracks"]  # the same files: how the path was spelled does not matter
    if old != new:
        return False
    if old_digest and new_digest:
        return old_digest == new_digest
    if old_path is None or new_path is None:
        return old_path == new_path
    from drivesim.learn.checkpoint import resolve

    return resolve(old_path).resolve() == resolve(new_path).resolve()


def choose_track(config: GenerateConfig, rng: np.random.Generator, pool: list[Track] | None) -> Track:
    """The track of one shard: drawn from the pool, or generated fresh."""
    if pool:
        return pool[int(rng.integers(len(pool)))]
    seed = int(rng.integers(*RANDOM_TRACK_SEEDS))
    return generate_track(seed, random_track_config(rng))


class LastScene:
    """The scene of the last shard's track, for the next shard if it drives the same track.

    A scene costs a few tenths of a second; with a track pool, a process is
    handed the shards of one track together (`shard_groups`). At most one scene
    is held: the old one is let go before a new one is built, so a worker's
    memory peak does not grow.
    """

    def __init__(self) -> None:
        self._scene: Scene | None = None

    def get(self, track: Track) -> Scene:
        """The scene of `track`: the kept one if it is of this very track, else a freshly built one."""
        if self._scene is None or self._scene.track is not track:
            self._scene = None
            self._scene = build_scene(track)
        return self._scene


def shard_groups(jobs: list[ShardJob], config: GenerateConfig, pool: list[Track] | None, workers: int = 1) -> list[list[ShardJob]]:
    """`jobs` cut into units of work for `workers` processes: with a track pool, the shards of one track
    together (at most a 2 * workers-th of all, so one busy track cannot leave a process idle), largest
    first; fresh random tracks are all different, so there each shard is its own unit, in index order.
    How shards are grouped never changes what a shard holds."""
    if not pool:
        return [[job] for job in jobs]
    position = {id(track): i for i, track in enumerate(pool)}
    by_track: dict[int, list[ShardJob]] = {}
    for job in jobs:
        track = choose_track(config, np.random.default_rng([config.seed, job.index]), pool)
        by_track.setdefault(position[id(track)], []).append(job)
    cap = max(1, math.ceil(len(jobs) / (2 * workers)))
    groups = [same[i : i + cap] for _, same in sorted(by_track.items()) for i in range(0, len(same), cap)]
    return sorted(groups, key=len, reverse=True)  # stable: equal sizes stay in track order


def write_shard(
    job: ShardJob,
    config: GenerateConfig,
    folder: Path,
    pool: list[Track] | None,
    on_frames: Callable[[int], None] | None = None,
    scenes: LastScene | None = None,
) -> ShardInfo:
    """Drive episodes until shard `job.index` holds `job.frames` frames; write it atomically.

    `scenes` lets consecutive shards on the same track share its scene; the shard's bytes are the same
    either way."""
    rng = np.random.default_rng([config.seed, job.index])
    track = choose_track(config, rng, pool)
    view = RigView(track, config.rig, config.randomization, scenes.get(track) if scenes is not None else None)
    world = World(track, config.car, config.world)
    expert = ExpertDriver(config.expert)
    policy = load_policy(config.policy) if config.policy else None
    attrs = {
        "config": config_fingerprint(config),
        "camera_intrinsics": view.intrinsics(),
        "generator": {"shard": job.index, "track": track.name, "track_seed": track.seed},
    }
    with ShardWriter(folder / shard_name(job.index), view.camera_shapes(), attrs) as writer, closing(view):
        remaining, k = job.frames, 0
        while remaining > 0:
            if k >= EPISODES_PER_SHARD_MAX:  # crashes end episodes early: more than shard_frames / episode_frames
                raise GenerateError(f"more than {EPISODES_PER_SHARD_MAX} episodes in shard {job.index}, most of them ended early by crashes; "
                                    "lower shard_frames")
            episode_rng = np.random.default_rng([config.seed, job.index, k])
            start = float(episode_rng.uniform(0.0, track.length))
            offset = float(episode_rng.uniform(-0.5, 0.5))
            world.reset(s=start, lateral_offset=offset)
            expert.reset(world)
            # Start at cruising speed: frames of a car pulling away from rest are not what a network meets.
            world.reset(s=start, lateral_offset=offset, speed=expert.target_speed(world))
            look = view.start_episode(episode_rng)
            episode_id = job.index * EPISODES_PER_SHARD_MAX + k
            steps = min(config.episode_frames, remaining)
            if policy is not None:
                # The network drives; the expert takes over when it must, and a crash resets the car.
                episode = EpisodeConfig(max_steps=steps, end_on_crash=False)
                result = run_episode(world, policy, expert, episode, view, writer, episode_id, config.interventions)
            else:
                driver = NoisyDriver(expert, config.noise, episode_rng) if config.noise.enabled else expert
                result = run_episode(world, driver, expert, EpisodeConfig(max_steps=steps), view, writer, episode_id)
            writer.end_episode(
                {
                    "episode": episode_id,
                    "track": track.name,
                    "track_seed": track.seed,
                    "start_s": round(start, 3),
                    "frames": result.steps,
                    "crashed": result.crashed,
                    **look,
                }
            )
            remaining -= result.steps
            k += 1
            if on_frames is not None:
                on_frames(result.steps)
    assert writer.info is not None
    return writer.info


# ---------------------------------------------------------------- the run
@dataclass
class GenerateResult:
    """What a `generate` call did."""

    folder: Path
    frames: int
    """Frames in the finished recording."""
    shards: int
    reused_shards: int
    """Shards kept from an earlier, interrupted run."""
    made_frames: int
    """Frames rendered and written by this call."""
    seconds: float
    size: int = 0
    """Bytes of all the recording's shards [B]."""
    kept_versions: dict[str, int] = field(default_factory=dict)
    """drivesim version -> shards kept that an earlier run wrote with that version, if not this one: such a recording
    can differ in its bytes from a fresh run's (every shard's `drivesim_version` attribute says which wrote it)."""

    @property
    def frames_per_second(self) -> float:
        """Rate of this call's own work [frames/s]."""
        return self.made_frames / max(self.seconds, 1e-9)


OTHER_RECORDERS = {"play": "drivesim play (a person, the expert or a network driving)", "evaluation": "drivesim eval --record"}
"""A manifest's extra "kind" -> what made that recording, for a folder `generate` must not take as its own."""


def _as_recorded(folder: Path, config: GenerateConfig) -> GenerateConfig:
    """`config` with its track folder spelled as the recording in `folder` spells it (`tracks/train`
    against `tracks/train/`, say), where that spelling names the same files from here: the resumed run then
    writes the shards and manifest an uninterrupted run would have, byte for byte."""
    recorded: Any = None
    try:
        if (folder / MANIFEST_NAME).exists():
            recorded = read_manifest(folder).config
        elif first := min(folder.glob("shard-*.h5"), default=None):
            recorded = shard_info_from_file(first)[1]
    except RecordingError:
        return config  # prepare_folder says what is wrong with it
    tracks = recorded.get("tracks") if isinstance(recorded, dict) else None
    if not isinstance(tracks, str) or "random" in (tracks, config.tracks) or tracks == config.tracks:
        return config
    try:
        same_files = track_set_sha256(tracks) == track_set_sha256(config.tracks)
    except TrackError:  # that spelling was relative to another folder, or its files are gone
        return config
    return replace(config, tracks=tracks) if same_files else config


def prepare_folder(folder: Path, config: GenerateConfig, force: bool) -> dict[int, ShardInfo]:
    """Check `folder` against `config`; return the finished shards that can be kept.

    A shard is kept only if it is this run's shard at its index, intact: the
    same config (track files and policy weights included), the index its
    file name says, the frames the plan gives it, and, where a manifest
    lists it, the size and SHA-256 recorded there. Any other file under a
    shard name (another run's, a renamed or damaged one, not a shard at all)
    stops the run unless `force` is given, and then it is replaced. Nothing
    is deleted until every file has been judged. Unfinished (temporary)
    shards are always removed.
    """
    fingerprint = config_fingerprint(config)
    jobs = {job.index: job for job in plan_shards(config)}
    manifest = folder / MANIFEST_NAME
    listed: dict[str, ShardInfo] = {}
    if manifest.exists():
        try:
            recorded = read_manifest(folder)
        except RecordingError as error:
            if not force:
                raise GenerateError(f"{error}; use --force to replace the recording, or choose another --out") from None
        else:
            made_by = OTHER_RECORDERS.get(recorded.extra.get("kind"))
            if made_by and not force:
                raise GenerateError(f"{folder} holds a recording made by {made_by}, not by generate; choose another --out "
                                    "(--force would delete it)")
            if same_config(recorded.config, fingerprint):
                listed = {info.file: info for info in recorded.shards}
            elif not force:
                # More data is another recording beside this one: its shards' seeds and tracks are its own.
                grow = (" To add frames, generate another recording with another --seed and train on both (--data A --data B)."
                        if [key for key, *_ in _changed_keys(recorded.config, fingerprint)] == ["frames"] and config.frames > recorded.frames else "")
                raise GenerateError(f"{folder} holds a recording made with {_difference(recorded.config, fingerprint)}; "
                                    f"use --force to replace it, or choose another --out.{grow}")
    kept: dict[int, ShardInfo] = {}
    to_replace: list[Path] = []
    for path in sorted(folder.glob("shard-*.h5")):
        info, problem = _judge_shard(path, fingerprint, jobs, listed)
        if info is not None:
            kept[int(path.stem.split("-")[1])] = info
            continue
        if not force:
            raise GenerateError(f"{path} {problem}; use --force to replace it, or choose another --out")
        to_replace.append(path)
    # Every file is judged: only now is anything removed.
    manifest.unlink(missing_ok=True)
    for path in [*folder.glob("shard-*.h5.tmp"), *to_replace]:
        path.unlink()
    return kept


def _judge_shard(path: Path, fingerprint: dict[str, Any], jobs: dict[int, ShardJob], listed: dict[str, ShardInfo]) -> tuple[ShardInfo | None, str]:
    """(its ShardInfo, "") if the file at `path` is the run `fingerprint`'s intact shard, else (None, why not)."""
    try:
        info, shard_config = shard_info_from_file(path)
    except RecordingError as error:
        return None, f"is not a readable drivesim shard ({error})"
    if not same_config(shard_config, fingerprint):
        return None, f"was made with {_difference(shard_config, fingerprint)}"
    index = int(path.stem.split("-")[1])  # shard_info_from_file checked the name
    written = _generated_index(path)
    if written != index or index not in jobs or info.frames != jobs[index].frames:
        return None, f"is not this run's shard {index} (it holds shard {written}, {info.frames} frames): renamed or copied"
    if path.name in listed and (listed[path.name].size, listed[path.name].sha256) != (info.size, info.sha256):
        return None, "differs from the size and SHA-256 the manifest recorded for it: changed or damaged since the run"
    return info, ""


def _difference(stored: Any, fingerprint: dict[str, Any]) -> str:
    """What makes `stored` another run than `fingerprint`, in words."""
    if not isinstance(stored, dict):
        return "a different config"
    old_tracks, new_tracks = stored.get("tracks_sha256"), fingerprint.get("tracks_sha256")
    # The same folder (however spelled) with other files in it, or another folder: two different mistakes.
    same_folder = Path(str(stored.get("tracks"))).resolve() == Path(str(fingerprint.get("tracks"))).resolve()
    if old_tracks and new_tracks and old_tracks != new_tracks and same_folder and same_config({**stored, "tracks_sha256": new_tracks}, fingerprint):
        return f"a different config: the same options, but the track files in {fingerprint.get('tracks')} have changed since"
    changes = _changed_keys(stored, fingerprint)
    if old_tracks and old_tracks == new_tracks:  # the same pool, spelled another way: not a difference
        changes = [change for change in changes if change[0] != "tracks"]
    shown = ", ".join(f"{key} {old!r} there, {new!r} now" for key, old, new in changes[:3])
    return f"a different config ({shown}{', ...' if len(changes) > 3 else ''})" if changes else "a different config"


def _changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) of every setting that differs, digests left out."""
    changes = []
    for key in sorted(old.keys() | new.keys()):
        if key in DIGEST_KEYS or key == "policy":  # the policy is the same by its weights: same_config judges it
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += _changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            changes.append((prefix + key, a, b))
    return changes


def _generated_index(path: Path) -> int | None:
    """The shard index `generate` stored in the file's `generator` attribute, or None."""
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs["generator"]
        return int(json.loads(value.decode() if isinstance(value, bytes) else value)["shard"])
    except (OSError, KeyError, TypeError, ValueError, RuntimeError):  # RuntimeError: h5py on damaged HDF5 structure
        return None


def load_policy(checkpoint: str) -> Any:
    """The network driver for `checkpoint`, imported lazily: expert-only runs never load torch."""
    from drivesim.drivers.policy import PolicyDriver

    return PolicyDriver(checkpoint)


_worker_pools: dict[str, list[Track]] = {}
"""Track pools a worker process has loaded, by source: loaded and validated once, not per shard."""
_worker_scenes = LastScene()
"""The worker's last scene, kept for its next shard."""


def _worker_write_shards(jobs: list[ShardJob], config: GenerateConfig, folder: Path) -> list[ShardInfo]:
    pool = None
    if config.tracks != "random":
        if config.tracks not in _worker_pools:
            _worker_pools[config.tracks] = load_tracks(config.tracks)
        pool = _worker_pools[config.tracks]
    done = []
    for job in jobs:
        if stop_requested():  # the parent has given up on this run; its remaining shards are for a resumed run
            raise GenerateError("stopped: the run was interrupted")
        done.append(write_shard(job, config, folder, pool, on_frames=report_progress, scenes=_worker_scenes))
    return done


def generate(
    config: GenerateConfig,
    folder: Path | str,
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
) -> GenerateResult:
    """Make (or finish) the recording `folder` for `config` with `workers` processes."""
    folder = Path(folder)
    workers = workers or usable_cores()
    if workers < 1:
        raise GenerateError("--workers must be at least 1")
    pool = load_tracks(config.tracks) if config.tracks != "random" else None
    if config.policy:  # a missing or damaged checkpoint is an error before the folder is made
        trained = load_policy(config.policy).checkpoint.camera
        if trained is not None and trained != config.rig.camera:
            raise GenerateError(f"the policy {config.policy} was trained through another camera than this run's rig.camera "
                                f"({trained.differences(config.rig.camera)}): it would drive on frames unlike those it learned from; record through its camera")
    folder.mkdir(parents=True, exist_ok=True)
    with writing_alone(folder, "--out"):
        config = _as_recorded(folder, config)
        kept = prepare_folder(folder, config, force)
        todo = [job for job in plan_shards(config) if job.index not in kept]
        started = time.perf_counter()
        done = dict(kept)
        bar = _progress_bar(config.frames, sum(i.frames for i in kept.values()), progress)
        try:
            groups = shard_groups(todo, config, pool, workers)
            if workers == 1 or len(todo) <= 1:
                scenes = LastScene()
                for job in (job for group in groups for job in group):
                    done[job.index] = write_shard(job, config, folder, pool, on_frames=bar.update, scenes=scenes)
            else:
                done.update(_run_pool(groups, config, folder, workers, bar))
        finally:
            bar.close()
        shards = [done[job.index] for job in plan_shards(config)]
        write_manifest(folder, shards, config_fingerprint(config), {"run_seed": config.seed, "shard_seeds": "[run_seed, shard_index]"}, {"tracks": config.tracks})
    made = config.frames - sum(info.frames for info in kept.values())
    seconds = time.perf_counter() - started
    return GenerateResult(folder, config.frames, len(shards), len(kept), made, seconds, sum(info.size for info in shards), _kept_versions(folder, kept))


def _kept_versions(folder: Path, kept: dict[int, ShardInfo]) -> dict[str, int]:
    """Versions other than this drivesim that wrote the `kept` shards, with their shard counts."""
    versions: dict[str, int] = {}
    for info in kept.values():
        with h5py.File(folder / info.file, "r") as f:
            version = str(f.attrs.get("drivesim_version", "unknown"))
        if version != __version__:
            versions[version] = versions.get(version, 0) + 1
    return versions


def _run_pool(groups: list[list[ShardJob]], config: GenerateConfig, folder: Path, workers: int, bar: Any) -> dict[int, ShardInfo]:
    results: dict[int, ShardInfo] = {}

    def keep(group: int, infos: list[ShardInfo]) -> None:
        for job, info in zip(groups[group], infos, strict=True):
            results[job.index] = info

    # One torch thread a worker: one worker per core, and a network driving uses no more.
    try:
        run_in_workers(_worker_write_shards, [(group, config, folder) for group in groups], min(workers, len(groups)), 1, bar, keep)
    except BrokenProcessPool:
        raise GenerateError(f"{WORKER_DIED}; finished shards are kept, re-run to resume") from None
    return results


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="frame", unit_scale=True, desc="generate", disable=not enabled, smoothing=0.05, dynamic_ncols=True)


__all__ = ["GenerateError", "GenerateResult", "LastScene", "ShardJob", "generate", "plan_shards", "prepare_folder", "shard_groups", "write_shard"]
