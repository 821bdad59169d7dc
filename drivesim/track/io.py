"""Track files: JSON with a format version, the seed, the config and the centreline.

The centreline is stored point by point (millimetre precision, which is how
the generator makes it), so a loaded track is bit-identical to the saved one
whatever generator version is installed. Loading validates the geometry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from drivesim.atomic import write_atomically
from drivesim.config import TRACK_WIDTHS, CarConfig, ConfigError, TrackConfig, from_dict, to_dict
from drivesim.track.generator import validate_track
from drivesim.track.geometry import Track, TrackError

TRACK_FORMAT_VERSION = 1

BUNDLED_TRACKS = Path(__file__).resolve().parents[1] / "tracks"
"""The bundled track sets (train/, val/, holdout/), shipped as package data; in a checkout, a link to tracks/."""


def track_to_json(track: Track) -> dict[str, Any]:
    """Plain data of a track file."""
    return {
        "format_version": TRACK_FORMAT_VERSION,
        "name": track.name,
        "seed": track.seed,
        "config": to_dict(track.config) if track.config else None,
        "width": track.width,
        "lanes": track.lanes,
        "length": round(track.length, 3),
        "centreline": track.centreline.tolist(),
    }


def save_track(track: Track, path: Path | str) -> Path:
    """Write `track` to `path` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, json.dumps(track_to_json(track), separators=(",", ":")))


def track_from_json(data: Any, source: str = "track") -> Track:
    """Build and validate a track from the plain data of a track file."""
    if not isinstance(data, dict):
        raise TrackError(f"{source}: not a track file (expected a JSON object)")
    version = data.get("format_version")
    if version != TRACK_FORMAT_VERSION:
        raise TrackError(f"{source}: unsupported track format_version {version!r} (this drivesim reads {TRACK_FORMAT_VERSION})")
    missing = [key for key in ("width", "lanes", "centreline") if key not in data]
    if missing:
        raise TrackError(f"{source}: missing field(s) {', '.join(missing)}")
    try:
        config = from_dict(TrackConfig, data["config"]) if data.get("config") is not None else None
        centreline = np.asarray(data["centreline"], dtype=np.float64)
        width, lanes, seed, name = data["width"], data["lanes"], data.get("seed"), data.get("name")
        # bool is an int to Python and JSON's true is not a width; check the types a track file may hold.
        if type(width) not in (int, float) or not TRACK_WIDTHS[0] <= width <= TRACK_WIDTHS[1]:
            raise TrackError(f"width must be a number of metres in [{TRACK_WIDTHS[0]:g}, {TRACK_WIDTHS[1]:g}], got {width!r}")
        if type(lanes) is not int:
            raise TrackError(f"lanes must be an integer, got {lanes!r}")
        if seed is not None and type(seed) is not int:
            raise TrackError(f"seed must be an integer or null, got {seed!r}")
        if name is not None and not isinstance(name, str):
            raise TrackError(f"name must be a string or null, got {name!r}")
        track = Track(centreline, float(width), lanes, seed=seed, config=config, name=name or "")
        # Without the generator's config, the bends must still be ones the car can take.
        min_radius = config.min_radius if config else max(track.width, CarConfig().min_turn_radius)
        validate_track(track, min_radius)
    except (TrackError, ConfigError, ValueError, TypeError, OverflowError) as error:
        raise TrackError(f"{source}: {error}") from None
    return track


def bundled_if_missing(source: Path | str) -> Path:
    """`source`, or for a relative tracks/... path that does not exist here, the bundled one (tracks/train,
    tracks/val, tracks/holdout and their files), so they are found from any working folder and after a
    non-editable install."""
    source = Path(source)
    if not source.exists() and source.parts[:1] == ("tracks",):
        bundled = BUNDLED_TRACKS.joinpath(*source.parts[1:])
        if bundled.exists():
            return bundled
    return source


def load_track(path: Path | str) -> Track:
    """Read a track file (see `bundled_if_missing`); raises TrackError with the file name for any problem."""
    path = bundled_if_missing(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise TrackError(f"{path}: no such track file or folder") from None
    except (IsADirectoryError, UnicodeDecodeError) as error:
        raise TrackError(f"{path}: cannot read track file ({error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise TrackError(f"{path}: not valid JSON, file truncated or corrupt ({error.msg} at line {error.lineno})") from None
    except ValueError as error:  # valid JSON Python will not read, such as an integer of thousands of digits
        raise TrackError(f"{path}: cannot read track file ({error})") from None
    track = track_from_json(data, str(path))
    if not track.name:
        track.name = path.stem
    return track


def is_track_file(path: Path | str) -> bool:
    """Whether `path` is a readable track file (other JSON beside tracks, such as a manifest, is not)."""
    try:
        load_track(path)
    except (TrackError, OSError, ValueError):
        return False
    return True


def track_files(source: Path | str) -> list[Path]:
    """The track files of a folder (sorted by name), or the one file given (see `bundled_if_missing`)."""
    given, source = source, bundled_if_missing(source)
    if source.is_dir():
        if (source / "manifest.json").is_file() and any(source.glob("shard-*.h5")):
            raise TrackError(f"{given} is a recording folder, not a folder of track files (such as tracks/train)")
        files = sorted(source.glob("*.json"))
        if not files:
            sets = sorted(folder.name for folder in source.iterdir() if folder.is_dir() and any(folder.glob("*.json")))
            within = f"; it holds the track sets {', '.join(sets)}: name one, e.g. {Path(given) / sets[0]}" if sets else ""
            raise TrackError(f"{given}: no track files (*.json) in this folder{within}")
        return files
    return [source]


def track_set_sha256(source: Path | str) -> str:
    """SHA-256 over the names and bytes of `track_files(source)`: a track set's identity, wherever it lies."""
    digest = hashlib.sha256()
    for path in track_files(source):
        try:
            data = path.read_bytes()
        except OSError as error:
            raise TrackError(f"{path}: cannot read the track file ({error.strerror or error})") from None
        digest.update(f"{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def load_tracks(source: Path | str) -> list[Track]:
    """All tracks in a folder (sorted by file name), or the one track in a file (see `track_files`)."""
    files = track_files(source)
    tracks = [load_track(f) for f in files]
    first_with: dict[str, Path] = {}
    for path, track in zip(files, tracks, strict=True):
        if track.name in first_with:  # a name keys the track in shards, reports and metrics.json
            raise TrackError(f"{path}: its track name {track.name!r} is also that of {first_with[track.name].name}; names in a track set must differ")
        first_with[track.name] = path
    return tracks
