"""`manifest.json`: the table of contents of a recording folder, written last and atomically.

It lists every shard with its frame and episode counts, size and SHA-256,
and carries the schema version, the config and the seeds of the run. Its
bytes depend only on its content (sorted keys, no timestamps), so the same
run gives the same manifest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivesim import __version__
from drivesim.atomic import write_atomically
from drivesim.record.schema import (
    CAMERA_NAMES,
    MANIFEST_NAME,
    SCHEMA_VERSION,
    SHARD_PATTERN,
    RecordingError,
)

FORMAT_NAME = "drivesim-recording"
"""Value of the manifest's "format" key, so a stray manifest.json is not mistaken for one."""


@dataclass(frozen=True)
class ShardInfo:
    """What the manifest says about one complete shard."""

    file: str
    """File name in the recording folder, e.g. "shard-00003.h5"."""
    frames: int
    """Number of frames N in the shard."""
    episode_ids: tuple[int, ...]
    """`meta/episode` of each episode in the shard, in the order written."""
    cameras: Mapping[str, tuple[int, int]]
    """Camera name -> (height, width) [px] of its `images/<camera>` dataset."""
    size: int
    """File size [bytes]."""
    sha256: str
    """Hex SHA-256 of the whole file."""

    @property
    def episodes(self) -> int:
        return len(self.episode_ids)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "frames": self.frames,
            "episodes": self.episodes,
            "episode_ids": list(self.episode_ids),
            "cameras": {name: list(hw) for name, hw in sorted(self.cameras.items())},
            "size": self.size,
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ShardInfo:
        _require(isinstance(data, dict), f"{where}: a shard entry must be an object")
        for key, kind in (("file", str), ("frames", int), ("episodes", int), ("episode_ids", list), ("cameras", dict), ("size", int), ("sha256", str)):
            _require(isinstance(data.get(key), kind) and not isinstance(data.get(key), bool), f"{where}: '{key}' missing or not a {kind.__name__}")
        _require(SHARD_PATTERN.match(data["file"]) is not None, f"{where}: bad shard file name {data['file']!r}")
        _require(all(isinstance(e, int) for e in data["episode_ids"]), f"{where}: episode_ids must be integers")
        _require(data["episodes"] == len(data["episode_ids"]), f"{where}: 'episodes' disagrees with 'episode_ids'")
        cameras = {}
        for name, hw in data["cameras"].items():
            ok = name in CAMERA_NAMES and isinstance(hw, list) and len(hw) == 2 and all(isinstance(v, int) and v > 0 for v in hw)
            _require(ok, f"{where}: bad camera entry {name!r}: {hw!r}")
            cameras[name] = (hw[0], hw[1])
        return cls(data["file"], data["frames"], tuple(data["episode_ids"]), cameras, data["size"], data["sha256"])


@dataclass(frozen=True)
class Manifest:
    """The parsed and checked content of a recording's manifest.json."""

    schema_version: int
    """Schema version of every shard."""
    drivesim_version: str
    """Version of drivesim that wrote the recording."""
    shards: tuple[ShardInfo, ...]
    """Every shard, in file-name order."""
    config: dict[str, Any]
    """The run's configuration (plain JSON data)."""
    seeds: Any
    """The run's seeds (plain JSON data), enough to regenerate it."""
    extra: dict[str, Any]
    """Anything else the writer wanted to keep (plain JSON data)."""

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.shards)

    @property
    def episodes(self) -> int:
        return sum(s.episodes for s in self.shards)

    @property
    def cameras(self) -> Mapping[str, tuple[int, int]]:
        return self.shards[0].cameras

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "schema_version": self.schema_version,
            "drivesim_version": self.drivesim_version,
            "frames": self.frames,
            "episodes": self.episodes,
            "cameras": {name: list(hw) for name, hw in sorted(self.cameras.items())},
            "shards": [s.to_dict() for s in self.shards],
            "config": self.config,
            "seeds": self.seeds,
            "extra": self.extra,
        }


_NUMBER_LIST = re.compile(r"\[\n\s*(-?\d+(?:,\n\s*-?\d+)*)\n\s*\]")


def manifest_text(data: Mapping[str, Any]) -> str:
    """The bytes of a manifest as text: sorted keys, one-space indent, lists of integers on one line."""
    text = json.dumps(data, sort_keys=True, indent=1, allow_nan=False)
    return _NUMBER_LIST.sub(lambda m: "[" + re.sub(r",\n\s*", ", ", m.group(1)) + "]", text) + "\n"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise RecordingError(message)


def _json_copy(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise RecordingError(f"{what} must be plain JSON data (no NaN): {error}") from None


def write_manifest(
    folder: str | Path,
    shards: Sequence[ShardInfo],
    config: Mapping[str, Any],
    seeds: Any,
    extra: Mapping[str, Any] | None = None,
) -> Manifest:
    """Write `folder`/manifest.json listing `shards`; call it after every shard is complete.

    Checks that the shards exist with their recorded sizes, share one camera
    set and have unique file names and episode ids. `config` and `seeds` are
    plain JSON data; `extra` holds anything else worth keeping.
    """
    folder = Path(folder)
    _require(len(shards) > 0, "a manifest needs at least one shard")
    shards = tuple(sorted(shards, key=lambda s: s.file))
    names = [s.file for s in shards]
    _require(len(set(names)) == len(names), f"duplicate shard file names in {names}")
    for shard in shards:
        path = folder / shard.file
        _require(path.is_file(), f"{path}: shard listed for the manifest does not exist")
        _require(path.stat().st_size == shard.size, f"{path}: size {path.stat().st_size} differs from the {shard.size} bytes written")
        _require(dict(shard.cameras) == dict(shards[0].cameras), f"{shard.file}: cameras {dict(shard.cameras)} differ from {shards[0].file}'s {dict(shards[0].cameras)}")
    seen: dict[int, str] = {}
    for shard in shards:
        for episode in shard.episode_ids:
            _require(episode not in seen, f"episode id {episode} is in both {seen.get(episode)} and {shard.file}; ids must be unique in a recording")
            seen[episode] = shard.file
    manifest = Manifest(
        SCHEMA_VERSION,
        __version__,
        shards,
        _json_copy(dict(config), "manifest config"),
        _json_copy(seeds, "manifest seeds"),
        _json_copy(dict(extra or {}), "manifest extra"),
    )
    write_atomically(folder / MANIFEST_NAME, manifest_text(manifest.to_dict()))
    return manifest


def read_manifest(folder: str | Path) -> Manifest:
    """Read and check `folder`/manifest.json; RecordingError says what is wrong with it."""
    path = Path(folder) / MANIFEST_NAME
    if not Path(folder).is_dir():
        what = "is a file, not a recording folder" if Path(folder).exists() else "no such recording folder"
        raise RecordingError(f"{folder}: {what}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not any(Path(folder).glob("shard-*")):
            raise RecordingError(f"{folder}: not a recording folder (no manifest.json, no shards)") from None
        raise RecordingError(f"{path}: no manifest; the recording is incomplete (still being written, or its writer failed)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RecordingError(f"{path}: not valid JSON ({error})") from None
    _require(isinstance(data, dict) and data.get("format") == FORMAT_NAME, f"{path}: not a drivesim recording manifest")
    version = data.get("schema_version")
    _require(
        version == SCHEMA_VERSION,
        f"{path}: schema version {version!r} is not supported; this drivesim ({__version__}) reads version {SCHEMA_VERSION}",
    )
    for key, kind in (("drivesim_version", str), ("frames", int), ("episodes", int), ("shards", list), ("config", dict), ("extra", dict)):
        _require(isinstance(data.get(key), kind), f"{path}: '{key}' missing or not a {kind.__name__}")
    _require("seeds" in data, f"{path}: 'seeds' missing")
    _require(len(data["shards"]) > 0, f"{path}: lists no shards")
    shards = tuple(ShardInfo.from_dict(entry, f"{path}: shards[{i}]") for i, entry in enumerate(data["shards"]))
    manifest = Manifest(version, data["drivesim_version"], shards, data["config"], data["seeds"], data["extra"])
    _require(manifest.frames == data["frames"], f"{path}: 'frames' is {data['frames']} but the shards hold {manifest.frames}")
    _require(manifest.episodes == data["episodes"], f"{path}: 'episodes' is {data['episodes']} but the shards hold {manifest.episodes}")
    names = [s.file for s in shards]
    _require(len(set(names)) == len(names), f"{path}: a shard is listed twice")
    _require(all(dict(s.cameras) == dict(manifest.cameras) for s in shards), f"{path}: shards differ in their cameras")
    return manifest


__all__ = ["FORMAT_NAME", "Manifest", "ShardInfo", "manifest_text", "read_manifest", "write_manifest"]
