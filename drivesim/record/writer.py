"""Writing shards: `ShardWriter` (one process, one file) and `RecordingWriter` (a folder of shards + manifest).

A shard is written as `shard-NNNNN.h5.tmp`, in batches appended to resizable
datasets so memory stays flat, every batch validated against the schema
(images go to the file with each batch, scalars a whole chunk at a time).
On a clean close the file is flushed, fsynced, hashed and renamed to its
final name; on an error the temporary file is deleted, so a file under a
shard name is always complete. Images are stored one frame per chunk,
gzip-compressed (plain h5py reads them, no plugins) with fletcher32
checksums; no object timestamps are stored, so the same frames give the
same bytes.

Compressing images is the largest single cost of recording. A camera's
frames of one episode are deflated by libdeflate or, when a probe of the
episode's first frame finds them to be noise, by zlib with Huffman coding
only, and written as they will be stored (`record.chunk`), on the caller's
thread.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from drivesim import __version__
from drivesim.atomic import fsync_dir, missing_folders, remove_empty_folders
from drivesim.record.chunk import choose_image_codec, image_chunk, stored_chunk
from drivesim.record.manifest import Manifest, ShardInfo, write_manifest
from drivesim.record.schema import (
    EPISODE_KEYS,
    MANIFEST_NAME,
    SCHEMA_VERSION,
    SHARD_PATTERN,
    TMP_SUFFIX,
    Field,
    RecordingError,
    shard_fields,
    validate_frames,
)

BATCH_FRAMES = 64
"""Frames a ShardWriter validates and writes at a time."""
SCALAR_GZIP_LEVEL = 4
"""gzip level of the per-frame scalar datasets (small; the shuffle filter does most of the work)."""
SCALAR_CHUNK = 4096
"""Frames per chunk of a scalar dataset."""
REQUIRED_ATTRS = ("config", "camera_intrinsics")
"""Keys the `attrs` of a ShardWriter must have."""
RESERVED_ATTRS = ("schema_version", "drivesim_version", "tracks")
"""Shard attributes the writer sets itself."""


def shard_fields_to_write(cameras: Mapping[str, tuple[int, int]]) -> dict[str, Field]:
    """`shard_fields(cameras)`, or RecordingError unless the cameras (name -> (height, width)) include the centre one.

    A shard is written with it, as the rigs make them (config.check_camera_names): it is the camera every
    reader defaults to. Readers still take shards without it, which earlier writers allowed."""
    if "center" not in cameras:
        raise RecordingError(f"a shard needs the center camera, and may add left and right; got {', '.join(map(repr, cameras)) or 'none'}")
    return shard_fields(cameras)


def check_shard_attrs(attrs: Mapping[str, Any], where: str = "") -> None:
    """RecordingError (its message starting with `where`) unless `attrs` has every required shard attribute
    and none of those the writer sets itself."""
    missing = [k for k in REQUIRED_ATTRS if k not in attrs]
    if missing:
        raise RecordingError(f"{where}shard attrs need {', '.join(missing)}")
    reserved = [k for k in RESERVED_ATTRS if k in attrs]
    if reserved:
        raise RecordingError(f"{where}attrs {', '.join(reserved)} are set by the writer itself")


def shard_name(index: int) -> str:
    """File name of shard number `index`: shard_name(3) == "shard-00003.h5"."""
    if not 0 <= index <= 99999:
        raise RecordingError(f"shard index {index} is outside [0, 99999]")
    return f"shard-{index:05d}.h5"


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise RecordingError(f"{what} must be plain JSON data (no NaN): {error}") from None


def _describe(error: Exception) -> str:
    """One line for a failed write: HDF5's messages span lines and carry buffer addresses and times."""
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno)  # e.g. "No space left on device"
    return " ".join(str(error).split())


def _create_group(parent: h5py.Group, name: str) -> h5py.Group:
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl)
    return parent[name]


class ShardWriter:
    """Writes the frames of whole episodes into one shard file.

    Use it as a context manager in ONE process: `add_frame` for every frame,
    `end_episode` after each episode's last frame. `close` (or leaving the
    `with` block normally) completes the file and returns its ShardInfo,
    also kept as `.info`; leaving the block with an exception deletes the
    temporary file.
    """

    def __init__(
        self,
        path: str | Path,
        cameras: Mapping[str, tuple[int, int]],
        attrs: Mapping[str, Any],
        batch_frames: int = BATCH_FRAMES,
    ) -> None:
        self.path = Path(path)
        """Final path of the shard, e.g. recordings/run/shard-00003.h5."""
        if not SHARD_PATTERN.match(self.path.name):
            raise RecordingError(f"{self.path}: a shard's file name must look like shard-00003.h5 (see shard_name)")
        if self.path.exists():
            raise RecordingError(f"{self.path}: already exists; shards are never overwritten")
        self.tmp_path = self.path.with_name(self.path.name + TMP_SUFFIX)
        """Where the shard is written until it is complete."""
        self.fields = shard_fields_to_write(cameras)
        """Every field of this shard, name -> Field."""
        self.cameras = {name: (int(h), int(w)) for name, (h, w) in cameras.items()}
        check_shard_attrs(attrs, f"{self.path}: ")
        encoded = {key: _json(value, f"shard attr {key!r}") for key, value in sorted(attrs.items())}
        if batch_frames < 1:
            raise RecordingError("batch_frames must be at least 1")
        self.info: ShardInfo | None = None
        """The finished shard's entry for the manifest, once closed."""
        self._names = frozenset(self.fields)
        self._images = tuple(name for name in self.fields if name.startswith("images/"))  # schema order: the write order sets the bytes
        self._buffers = {name: np.empty((batch_frames, *f.shape), f.np_dtype) for name, f in self.fields.items()}
        # Validated scalars wait here until a whole scalar chunk is ready: one HDF5 write per dataset and
        # chunk, instead of one per batch (each costs about as much as encoding an image).
        self._scalars = {name: np.empty(SCALAR_CHUNK, f.np_dtype) for name, f in self.fields.items() if name not in self._images}
        self._scalars_written = 0
        self._datasets: dict[str, h5py.Dataset] = {}
        self._buffered = 0
        self._frames = 0
        self._tracks: list[dict[str, Any]] = []
        self._episode: int | None = None
        self._codec_episode: int | None = None
        self._codecs: dict[str, str] = {}
        """Image codec of each camera in episode `_codec_episode`, chosen on its first frame (see record.chunk)."""
        self._episode_start = 0
        self._failed = False
        self.tmp_path.parent.mkdir(parents=True, exist_ok=True)
        self._file: h5py.File | None = h5py.File(self.tmp_path, "w")
        try:
            self._create(encoded)
        except BaseException:
            self.abort()
            raise

    def _create(self, encoded: Mapping[str, str]) -> None:
        f = self._file
        assert f is not None
        f.attrs["schema_version"] = np.int64(SCHEMA_VERSION)
        f.attrs["drivesim_version"] = __version__
        for key, text in encoded.items():
            f.attrs[key] = text
        groups: dict[str, h5py.Group] = {}
        for name, field in self.fields.items():
            group_name, leaf = name.split("/")
            if group_name not in groups:
                groups[group_name] = _create_group(f, group_name)
            if name in self._images:
                # The gzip filter tells readers how to inflate; the level is metadata only (record.chunk encodes every chunk).
                options = dict(chunks=(1, *field.shape), compression="gzip", compression_opts=1)
            else:
                options = dict(chunks=(SCALAR_CHUNK,), compression="gzip", compression_opts=SCALAR_GZIP_LEVEL, shuffle=True)
            self._datasets[name] = groups[group_name].create_dataset(
                leaf, shape=(0, *field.shape), maxshape=(None, *field.shape), dtype=field.np_dtype,
                fletcher32=True, track_times=False, **options,
            )

    @property
    def frames(self) -> int:
        """Frames added so far."""
        return self._frames

    @property
    def episodes(self) -> int:
        """Episodes ended so far."""
        return len(self._tracks)

    def _check_open(self) -> None:
        if self._file is None:
            raise RecordingError(f"{self.path}: the writer is closed")
        if self._failed:
            raise RecordingError(f"{self.path}: an earlier write failed; the shard cannot be completed")

    def add_frame(self, record: Mapping[str, Any]) -> None:
        """Append one frame: `record` maps every schema field (e.g. "images/center", "labels/steering") to its value."""
        self._check_open()
        if record.keys() != self._names:
            unknown = sorted(set(record) - self._names)
            missing = sorted(self._names - set(record))
            raise RecordingError(f"{self.path}: frame {self._frames}: unknown field(s) {unknown}, missing field(s) {missing}")
        k, buffers = self._buffered, self._buffers
        for name, field in self.fields.items():
            try:
                field.store(buffers[name], k, record[name])
            except RecordingError as error:
                raise RecordingError(f"{self.path}: frame {self._frames}: {error}") from None
        episode = int(self._buffers["meta/episode"][k])
        if self._episode is None:
            if any(t["episode"] == episode for t in self._tracks):
                raise RecordingError(f"{self.path}: episode {episode} was already ended in this shard; episode ids must be unique")
            self._episode, self._episode_start = episode, self._frames
        elif episode != self._episode:
            raise RecordingError(
                f"{self.path}: frame {self._frames} has meta/episode {episode} but episode {self._episode} is not ended; call end_episode() first"
            )
        self._buffered += 1
        self._frames += 1
        if self._buffered == len(self._buffers["meta/episode"]):
            self._flush()

    def end_episode(self, info: Mapping[str, Any]) -> None:
        """Close the current episode; `info` (JSON data) goes into the shard's `tracks` attribute.

        `info` needs "track" (track id/name) and "track_seed" (int or None);
        anything else (episode seed, randomization, driver) is kept as given.
        The writer adds "episode", "first_frame" and "frames" (if `info` has
        them, they must agree with what the writer counted).
        """
        self._check_open()
        if self._episode is None:
            raise RecordingError(f"{self.path}: end_episode() without any frame since the last episode")
        if not isinstance(info, Mapping):
            raise RecordingError(f"{self.path}: episode info must be a mapping, got {type(info).__name__}")
        missing = [k for k in EPISODE_KEYS if k not in info]
        if missing:
            raise RecordingError(f"{self.path}: episode info needs {', '.join(missing)}")
        counted = {"episode": self._episode, "first_frame": self._episode_start, "frames": self._frames - self._episode_start}
        for key, value in counted.items():
            if key in info and info[key] != value:
                raise RecordingError(f"{self.path}: episode info says {key} {info[key]!r} but the writer counted {value}")
        entry = json.loads(_json(dict(info), "episode info"))
        entry.update(counted)
        self._tracks.append(entry)
        self._episode = None

    def _flush(self) -> None:
        """Validate the buffered batch and write it to the file."""
        n = self._buffered
        if n == 0:
            return
        assert self._file is not None
        start = self._frames - n
        batch = {name: buffer[:n] for name, buffer in self._buffers.items()}
        try:
            batch = validate_frames(batch, self.fields, first_frame=start)
        except RecordingError as error:
            self._failed = True
            frame = getattr(error, "frame", None)
            where = ""
            if frame is not None:
                i = frame - start
                where = f" (episode {batch['meta/episode'][i]}, step {batch['meta/step'][i]})"
            raise RecordingError(f"{self.path}: {error}{where}") from None
        try:
            self._write_batch(batch, start)
        except BaseException as error:  # Ctrl-C included: the batch may be half in the file
            self._failed = True
            if isinstance(error, Exception):
                raise RecordingError(f"{self.path}: writing frames failed: {_describe(error)}") from error
            raise
        self._buffered = 0

    def _write_batch(self, batch: Mapping[str, np.ndarray], start: int) -> None:
        """Write the images of frames start.. and stage their scalars."""
        episodes = batch["meta/episode"]
        frames = len(episodes)
        for name in self._images:
            self._datasets[name].resize(start + frames, axis=0)
        # Each camera keeps one codec for a whole episode (one look, one level of sensor noise), chosen on
        # the episode's first frame: so the bytes do not depend on where batches happen to end.
        cuts = [0, *(np.flatnonzero(episodes[1:] != episodes[:-1]) + 1).tolist(), frames]
        for first, end in zip(cuts[:-1], cuts[1:], strict=True):
            probed: dict[str, bytes] = {}  # the episode's first frame, deflated while its codec was chosen
            if int(episodes[first]) != self._codec_episode:  # episodes are contiguous and unique in a shard
                self._codec_episode = int(episodes[first])
                for name in self._images:
                    self._codecs[name], probed[name] = choose_image_codec(batch[name][first])
            for name in self._images:
                dataset, codec = self._datasets[name], self._codecs[name]
                for i in range(first, end):
                    chunk = stored_chunk(probed[name]) if i == first and probed else image_chunk(batch[name][i], codec)
                    dataset.id.write_direct_chunk((start + i,) + (0,) * (dataset.ndim - 1), chunk)
        done = 0
        while done < frames:  # a batch may straddle two scalar chunks
            staged = start + done - self._scalars_written
            n = min(frames - done, SCALAR_CHUNK - staged)
            for name, stage in self._scalars.items():
                stage[staged : staged + n] = batch[name][done : done + n]
            done += n
            if staged + n == SCALAR_CHUNK:
                self._write_scalars(SCALAR_CHUNK)

    def _write_scalars(self, count: int) -> None:
        """Append the first `count` staged values of every scalar dataset."""
        if count == 0:
            return
        end = self._scalars_written + count
        for name, stage in self._scalars.items():
            dataset = self._datasets[name]
            dataset.resize(end, axis=0)
            dataset[self._scalars_written :] = stage[:count]
        self._scalars_written = end

    def close(self) -> ShardInfo:
        """Complete the shard: flush, fsync, rename to its final name; returns its ShardInfo.

        Raises RecordingError (and deletes the temporary file) if an episode
        was not ended or the shard holds no frames.
        """
        if self.info is not None:
            return self.info
        if self._failed or self._file is None:
            self.abort()
            raise RecordingError(f"{self.path}: an earlier write failed; the shard was discarded")
        try:
            if self._episode is not None:
                raise RecordingError(
                    f"{self.path}: episode {self._episode} has {self._frames - self._episode_start} frame(s) but was not ended; "
                    "a shard holds whole episodes"
                )
            if self._frames == 0:
                raise RecordingError(f"{self.path}: no frames were written")
            self._flush()
            tracks = _json(self._tracks, "tracks")
            try:
                self._write_scalars(self._frames - self._scalars_written)
                assert self._file is not None
                self._file.attrs["tracks"] = tracks
                self._file.flush()
                self._file.close()
                self._file = None
                digest = hashlib.sha256()
                with open(self.tmp_path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
                    os.fsync(f.fileno())
                size = self.tmp_path.stat().st_size
                os.replace(self.tmp_path, self.path)
                fsync_dir(self.path.parent)
            except OSError as error:
                raise RecordingError(f"{self.path}: completing the shard failed: {_describe(error)}") from error
        except BaseException:
            self.abort()
            raise
        self.info = ShardInfo(
            self.path.name, self._frames, tuple(t["episode"] for t in self._tracks), dict(self.cameras), size, digest.hexdigest()
        )
        return self.info

    def abort(self) -> None:
        """Give up on the shard: close and delete the temporary file. Safe to call more than once."""
        self._failed = True
        if self._file is not None:
            try:
                self._file.close()
            except Exception:
                pass
            self._file = None
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class RecordingWriter:
    """Writes a whole recording folder from one process: shards of about `shard_frames` frames, then the manifest.

    A new shard starts at the first episode after the current one reached
    `shard_frames`, so shards hold whole episodes. `close` (or a clean exit
    of the `with` block) writes manifest.json; an exception deletes the
    unfinished shard and writes no manifest. For many processes, give each
    its own ShardWriter and call `write_manifest` once all are done.
    """

    def __init__(
        self,
        folder: str | Path,
        cameras: Mapping[str, tuple[int, int]],
        attrs: Mapping[str, Any],
        seeds: Any,
        shard_frames: int = 4096,
        manifest_extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.folder = Path(folder)
        # What every shard will be checked against, checked once here: a mistake is answered by the
        # constructor, not by the first add_frame, and before any folder is made.
        shard_fields_to_write(cameras)
        check_shard_attrs(attrs, f"{self.folder}: ")
        if (self.folder / MANIFEST_NAME).exists():
            raise RecordingError(f"{self.folder}: already holds a recording; choose a new folder")
        if shard_frames < 1:
            raise RecordingError("shard_frames must be at least 1")
        self._made = missing_folders(self.folder)
        """Folders made for the recording: removed again if it ends with nothing in them."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.cameras = dict(cameras)
        self.attrs = dict(attrs)
        self.seeds = seeds
        self.shard_frames = shard_frames
        self.manifest_extra = dict(manifest_extra or {})
        self.shards: list[ShardInfo] = []
        """Shards completed so far."""
        self.manifest: Manifest | None = None
        """The written Manifest, once closed."""
        self._writer: ShardWriter | None = None
        self._closed = False

    def add_frame(self, record: Mapping[str, Any]) -> None:
        """Append one frame (see ShardWriter.add_frame), starting a new shard when needed."""
        if self._closed:
            raise RecordingError(f"{self.folder}: the recording is closed")
        if self._writer is None:
            self._writer = ShardWriter(self.folder / shard_name(len(self.shards)), self.cameras, self.attrs)
        self._writer.add_frame(record)

    def end_episode(self, info: Mapping[str, Any]) -> None:
        """End the current episode (see ShardWriter.end_episode); completes the shard once it is full."""
        if self._writer is None:
            raise RecordingError(f"{self.folder}: end_episode() without any frame since the last episode")
        self._writer.end_episode(info)
        if self._writer.frames >= self.shard_frames:
            self.shards.append(self._writer.close())
            self._writer = None

    def close(self) -> Manifest:
        """Complete the last shard and write manifest.json; returns the Manifest."""
        if self.manifest is not None:
            return self.manifest
        self._closed = True
        if self._writer is not None:
            self.shards.append(self._writer.close())
            self._writer = None
        try:
            self.manifest = write_manifest(self.folder, self.shards, self.attrs["config"], self.seeds, self.manifest_extra)
        except BaseException:  # no frame was added, say: no recording, and no empty folder for one
            remove_empty_folders(self._made)
            raise
        return self.manifest

    def abort(self) -> None:
        """Delete the unfinished shard; completed shards stay, without a manifest."""
        self._closed = True
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
        remove_empty_folders(self._made)

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


__all__ = ["RecordingWriter", "ShardWriter", "shard_name"]
