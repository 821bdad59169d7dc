"""Reading recordings: `open_recording` checks a folder against its manifest and the schema.

`verify_recording` also checks every byte (SHA-256) and every scalar value.
The torch Dataset over recordings is in `drivesim.record.dataset`; this
module needs only h5py and numpy.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from drivesim import __version__
from drivesim.record.manifest import Manifest, ShardInfo, read_manifest
from drivesim.record.schema import (
    FIELDS_BY_NAME,
    SCHEMA_VERSION,
    SHARD_PATTERN,
    RecordingError,
    shard_fields,
)

JSON_ATTRS = ("config", "camera_intrinsics", "tracks")
"""Shard attributes that every shard holds as JSON text."""
PLAIN_ATTRS = ("schema_version", "drivesim_version")
"""The shard attributes that are not JSON text: every other one, the writer's extras included, is."""


def open_shard(path: Path) -> h5py.File:
    """Open a shard read-only; RecordingError if it is not a readable HDF5 file."""
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise RecordingError(f"{path}: shard is missing") from None
    except OSError as error:
        raise RecordingError(f"{path}: cannot be opened as HDF5, the file is corrupt or truncated ({error})") from None


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_version(path: Path, f: h5py.File) -> None:
    version = f.attrs.get("schema_version")
    if version is None:
        raise RecordingError(f"{path}: no schema_version attribute; not a drivesim shard")
    if np.shape(version) != () or not np.issubdtype(np.asarray(version).dtype, np.integer):
        raise RecordingError(f"{path}: schema_version {version!r} is not an integer; not a drivesim shard")
    if int(version) != SCHEMA_VERSION:
        raise RecordingError(f"{path}: schema version {int(version)} is not supported; this drivesim ({__version__}) reads version {SCHEMA_VERSION}")


def _json_attr(path: Path, f: h5py.File, key: str) -> Any:
    try:
        value = f.attrs[key]
        return json.loads(value.decode() if isinstance(value, bytes) else value)
    except (KeyError, TypeError, ValueError) as error:
        raise RecordingError(f"{path}: attribute {key!r} is missing or not JSON ({error})") from None


# What h5py raises for a file whose HDF5 structure is damaged past its header (bad object headers, heaps,
# B-trees): a corrupt shard, not a bug, so it becomes a RecordingError like a truncated one.
_CORRUPT_HDF5 = (OSError, KeyError, RuntimeError, ValueError, TypeError, UnicodeDecodeError)


@contextmanager
def _damage_is_a_recording_error(path: Path) -> Iterator[None]:
    """Turn h5py's exceptions while reading an open shard's structure into a RecordingError (cause kept)."""
    try:
        yield
    except RecordingError:
        raise
    except _CORRUPT_HDF5 as error:
        raise RecordingError(f"{path}: corrupt HDF5 structure ({type(error).__name__}: {error})") from error


def check_shard(path: Path, info: ShardInfo) -> None:
    """Check one shard's size, schema version, datasets, dtypes, frame count and chunk count against the schema and `info`."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise RecordingError(f"{path}: shard is missing (or a link to a missing file)") from None
    if size != info.size:
        raise RecordingError(f"{path}: {size} bytes but the manifest says {info.size}; the file is truncated or was changed")
    try:
        fields = shard_fields(info.cameras)
    except RecordingError as error:
        raise RecordingError(f"{path}: {error}") from None
    with open_shard(path) as f, _damage_is_a_recording_error(path):
        _check_layout(path, f, info, fields)


def _check_layout(path: Path, f: h5py.File, info: ShardInfo, fields: Mapping[str, Any]) -> None:
    _check_version(path, f)
    present: dict[str, h5py.Dataset] = {}  # each object looked up once: lookups are most of this check's time
    f.visititems(lambda name, item: present.__setitem__(name, item) if isinstance(item, h5py.Dataset) else None)
    unknown = sorted(present.keys() - fields.keys())
    missing = sorted(fields.keys() - present.keys())
    if unknown or missing:
        raise RecordingError(f"{path}: datasets do not match the schema (missing: {missing}, unknown: {unknown})")
    for name, field in fields.items():
        dataset = present[name]
        expected = (info.frames, *field.shape)
        if dataset.dtype != field.np_dtype or dataset.shape != expected:
            raise RecordingError(f"{path}: {name} is {dataset.dtype} {dataset.shape}, expected {field.dtype} {expected}")
        # HDF5 reads a chunk that was never written as zeros, without an error: a black frame with a
        # real label. The writer writes every chunk, so a missing one means a damaged file.
        chunks = math.ceil(info.frames / dataset.chunks[0]) if dataset.chunks else None
        # get_num_chunks needs HDF5 1.10.5+ under h5py; without it the check is skipped (verify still decodes all).
        if chunks is not None and hasattr(dataset.id, "get_num_chunks") and dataset.id.get_num_chunks() != chunks:
            raise RecordingError(f"{path}: {name} holds {dataset.id.get_num_chunks()} chunks, expected {chunks}; the file is damaged")


def shard_info_from_file(path: str | Path) -> tuple[ShardInfo, Any]:
    """The manifest entry of a complete shard file, and its `config` attribute.

    For finishing a run whose manifest was never written: the shard is
    checked against the schema like `open_recording` does, and hashed.
    """
    path = Path(path)
    if not SHARD_PATTERN.match(path.name):
        raise RecordingError(f"{path}: not a shard file name (shard-00003.h5)")
    with open_shard(path) as f, _damage_is_a_recording_error(path):
        _check_version(path, f)
        tracks = _json_attr(path, f, "tracks")
        config = _json_attr(path, f, "config")
        if "images" not in f or "meta/episode" not in f:
            raise RecordingError(f"{path}: datasets do not match the schema (no images or meta/episode)")
        cameras = {name: (int(d.shape[1]), int(d.shape[2])) for name, d in f["images"].items() if isinstance(d, h5py.Dataset) and d.ndim == 4}
        frames = int(f["meta/episode"].shape[0])
    try:
        episode_ids = tuple(int(t["episode"]) for t in tracks)
    except (TypeError, KeyError, ValueError):
        raise RecordingError(f"{path}: the tracks attribute is not a list of episodes") from None
    info = ShardInfo(path.name, frames, episode_ids, cameras, path.stat().st_size, file_sha256(path))
    check_shard(path, info)
    return info, config


@dataclass(frozen=True)
class Recording:
    """A checked recording folder: its manifest and the paths of its shards."""

    folder: Path
    manifest: Manifest

    @property
    def shards(self) -> tuple[ShardInfo, ...]:
        return self.manifest.shards

    @property
    def frames(self) -> int:
        return self.manifest.frames

    @property
    def episodes(self) -> int:
        return self.manifest.episodes

    @property
    def cameras(self) -> Mapping[str, tuple[int, int]]:
        return self.manifest.cameras

    def shard_path(self, shard: int) -> Path:
        return self.folder / self.shards[shard].file

    def attrs(self, shard: int) -> dict[str, Any]:
        """The attributes of shard number `shard`: `JSON_ATTRS` decoded (RecordingError if they are not JSON), the
        version ones as stored, and any other attribute decoded when it is JSON text (the writer's always are:
        `generator`, for one), else as stored (one added with plain h5py, say)."""
        path = self.shard_path(shard)
        with open_shard(path) as f:
            out = {}
            for key, value in f.attrs.items():
                plain = value.decode() if isinstance(value, bytes) else value.item() if isinstance(value, np.generic) else value
                if key in JSON_ATTRS:
                    out[key] = _json_attr(path, f, key)
                elif key not in PLAIN_ATTRS and isinstance(plain, str):
                    try:
                        out[key] = json.loads(plain)
                    except ValueError:
                        out[key] = plain
                else:
                    out[key] = plain
        return out

    def read(self, name: str, shard: int) -> np.ndarray:
        """All values of scalar field `name` (e.g. "labels/steering") in shard number `shard`."""
        if name not in FIELDS_BY_NAME:
            raise RecordingError(f"{name!r} is not a scalar field of the schema; known: {', '.join(FIELDS_BY_NAME)}")
        path = self.shard_path(shard)
        with open_shard(path) as f:
            try:
                return f[name][...]
            except OSError as error:
                raise RecordingError(f"{path}: cannot read {name}, the file is corrupt ({error})") from None


def open_recording(folder: str | Path) -> Recording:
    """Read the manifest of `folder` and check every shard against it and the schema (no data is read).

    RecordingError names the problem: no manifest, a listed shard missing, a
    shard file not in the manifest, an unknown schema version, a truncated,
    corrupt or mismatching file.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    listed = {s.file for s in manifest.shards}
    present = {p.name for p in folder.iterdir() if SHARD_PATTERN.match(p.name)}
    missing = sorted(listed - present)
    if missing:
        raise RecordingError(f"{folder}: shard(s) {', '.join(missing)} are listed in the manifest but missing")
    unlisted = sorted(present - listed)
    if unlisted:
        raise RecordingError(f"{folder}: shard(s) {', '.join(unlisted)} are not in the manifest; they belong to another or an unfinished run")
    for info in manifest.shards:
        check_shard(folder / info.file, info)
    return Recording(folder, manifest)


VERIFY_BLOCK = 256
"""Frames of one camera decoded per read while verifying (15 MB of 160x120 frames)."""


def verify_recording(folder: str | Path) -> Recording:
    """`open_recording`, then check each shard's SHA-256, every scalar value against the schema, that no chunk
    skips its filters, and decode every image.

    Decoding makes HDF5 inflate each image chunk and check its fletcher32: a
    SHA-256 matching the manifest shows the file is what was written, not
    that what was written decodes. A chunk whose filter mask skips the
    filters would be read raw, its checksum unchecked.
    """
    recording = open_recording(folder)
    for index, info in enumerate(recording.shards):
        path = recording.shard_path(index)
        if file_sha256(path) != info.sha256:
            raise RecordingError(f"{path}: SHA-256 differs from the manifest; the file is corrupt or was changed")
        _check_images(path)
        for name, field in FIELDS_BY_NAME.items():
            try:
                field.check_values(recording.read(name, index))
            except RecordingError as error:
                raise RecordingError(f"{path}: {error}") from None
        tracks = recording.attrs(index)["tracks"]
        episodes = recording.read("meta/episode", index)
        if tuple(t["episode"] for t in tracks) != info.episode_ids or sum(t["frames"] for t in tracks) != info.frames:
            raise RecordingError(f"{path}: the tracks attribute disagrees with the manifest's episodes")
        for t in tracks:
            if np.any(episodes[t["first_frame"] : t["first_frame"] + t["frames"]] != t["episode"]):
                raise RecordingError(f"{path}: meta/episode disagrees with the tracks attribute for episode {t['episode']}")
    return recording


def _chunk_filter_masks(dataset: h5py.Dataset) -> list[int]:
    """The filter mask of every stored chunk of `dataset` (0: every filter, checksum included, applies)."""
    masks: list[int] = []
    if hasattr(dataset.id, "chunk_iter"):  # HDF5 1.12.3+ / 1.10.10+: one pass over the chunk index
        dataset.id.chunk_iter(lambda chunk: masks.append(chunk.filter_mask))
    elif hasattr(dataset.id, "get_chunk_info"):  # older HDF5: a walk of the index per chunk, slower but the same
        masks = [dataset.id.get_chunk_info(i).filter_mask for i in range(dataset.id.get_num_chunks())]
    return masks


def _check_images(path: Path) -> None:
    with open_shard(path) as f:
        for name in (*FIELDS_BY_NAME, *(f"images/{camera}" for camera in f["images"])):
            # A chunk whose mask skips the filters is read raw: no inflating, no fletcher32. The writer never
            # skips a filter, so a set bit means a damaged chunk index, which would read as garbage unchecked.
            if any(_chunk_filter_masks(f[name])):
                raise RecordingError(f"{path}: {name} has a chunk stored without its filters; the chunk index is damaged")
        for name, dataset in f["images"].items():
            for start in range(0, len(dataset), VERIFY_BLOCK):
                end = min(start + VERIFY_BLOCK, len(dataset))
                try:
                    dataset[start:end]
                except OSError as error:
                    frame = next((i for i in range(start, end) if not _decodes(dataset, i)), None)
                    if frame is None:  # the block failed, no single frame does: report the read itself
                        raise RecordingError(f"{path}: reading images/{name} frames {start}-{end - 1} failed: {error}") from None
                    raise RecordingError(f"{path}: images/{name} frame {frame} does not decode (bad deflate stream or checksum)") from None


def _decodes(dataset: h5py.Dataset, frame: int) -> bool:
    try:
        dataset[frame]
    except OSError:
        return False
    return True


__all__ = ["JSON_ATTRS", "PLAIN_ATTRS", "Recording", "check_shard", "file_sha256", "shard_info_from_file", "open_recording", "open_shard", "verify_recording"]
