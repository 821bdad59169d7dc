"""`PlayRecorder`: what the window records, as a standard recording folder.

Every stretch of recording (from `R` on to `R` off, a reset, a new track, a
change of look, or `segment_frames` frames) is one episode in one shard.
When a stretch ends its shard is completed (written under a temporary name,
then renamed, see `ShardWriter`) and manifest.json is rewritten to list
every shard so far, so the folder is a valid recording after every stretch.
If a shard cannot be completed it is deleted; a file under a shard name is
always whole. The frames are the rig's standard-size frames, never the
window's display frames.

Compressing and writing frames takes a few milliseconds per batch, which
would make the window stutter; a background thread does it (`ShardThread`),
with a bounded queue so that a slow disk slows the window rather than
filling memory. Its errors are raised in the window's thread, at the next
frame or when the stretch ends.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from drivesim.atomic import missing_folders, remove_empty_folders
from drivesim.errors import DrivesimError
from drivesim.record import ShardInfo, ShardWriter, shard_name, write_manifest
from drivesim.record.schema import MANIFEST_NAME, SHARD_PATTERN

WRITE_BATCH = 8
"""Frames buffered before each write to the file."""
QUEUE_FRAMES = 200
"""Frames waiting for the writer thread at most (10 s of driving); beyond it the window waits for the disk."""


class PlayRecordingError(DrivesimError):
    """The recording folder cannot be used."""


class ShardThread:
    """One `ShardWriter` fed by a background thread: `add_frame` queues, `close` waits for the writes and completes the shard."""

    def __init__(self, path: Path, cameras: Mapping[str, tuple[int, int]], attrs: Mapping[str, Any]) -> None:
        self.writer = ShardWriter(path, cameras, attrs, batch_frames=WRITE_BATCH)  # here: a bad path fails at once
        self.frames = 0
        """Frames handed over so far."""
        self._queue: queue.Queue[Mapping[str, Any] | None] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=f"drivesim-writer-{path.name}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            record = self._queue.get()
            if record is None:
                return
            if self._error is None:  # after an error, only drain the queue
                try:
                    self.writer.add_frame(record)
                except BaseException as error:
                    self._error = error

    def add_frame(self, record: Mapping[str, Any]) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(record)
        self.frames += 1

    def _join(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def close(self, info: Mapping[str, Any]) -> ShardInfo:
        """Wait for every queued frame, end the episode with `info` and complete the shard (deleted on any error)."""
        try:
            self._join()
            if self._error is not None:
                raise self._error
            self.writer.end_episode(info)
            return self.writer.close()
        except BaseException:
            self.writer.abort()
            raise

    def abort(self) -> None:
        """Stop writing and delete the temporary file."""
        self._error = self._error or RuntimeError("aborted")
        self._join()
        self.writer.abort()


class PlayRecorder:
    """The episode loop's recorder: passes frames to the current shard while recording is on, drops them otherwise.

    Ending a stretch hands its shard to a background thread that completes it (waits for the queued
    frames, hashes, fsyncs, renames) and rewrites the manifest: a long shard takes a second to complete,
    and the window must not freeze for it. `wait()` waits for those; `finish()` ends the session.
    """

    def __init__(
        self,
        folder: Path | str,
        cameras: Mapping[str, tuple[int, int]],
        config: Mapping[str, Any],
        camera_intrinsics: Mapping[str, Any],
        seeds: Any = None,
        segment_frames: int = 2400,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise PlayRecordingError(f"{self.folder}: exists and is not a folder")
        if (self.folder / MANIFEST_NAME).exists() or any(SHARD_PATTERN.match(p.name) for p in self.folder.glob("shard-*")):
            raise PlayRecordingError(f"{self.folder}: already holds a recording; choose a new folder")
        if segment_frames < 1:
            raise PlayRecordingError("segment_frames must be at least 1")
        self._made_folders = missing_folders(self.folder)
        """Folders this session makes for the recording: those it leaves empty are removed at `finish`."""
        try:  # now, so a folder that cannot be written fails before the window opens, not at the first frame
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise PlayRecordingError(f"{self.folder}: cannot make the recording folder ({error.strerror})") from None
        if not os.access(self.folder, os.W_OK):
            raise PlayRecordingError(f"{self.folder}: the recording folder is not writable")
        self.cameras = dict(cameras)
        self.attrs = {"config": dict(config), "camera_intrinsics": dict(camera_intrinsics)}
        """Attributes of every shard."""
        self.seeds = seeds
        self.segment_frames = segment_frames
        """A stretch of recording longer than this is cut into episodes (and shards) of this many frames."""
        self.shards: list[ShardInfo] = []
        """Shards completed so far, all listed in the manifest."""
        self.log = log
        self._writer: ShardThread | None = None
        self._open = False
        self._info: dict[str, Any] = {}
        self._next = 0
        """Index of the next shard, which is also its episode id."""
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        """Threads completing shards."""
        self._completing: dict[int, int] = {}
        """Shard index -> frames, of the shards being completed."""
        self._errors: list[BaseException] = []

    @property
    def recording(self) -> bool:
        """A stretch is open: frames handed to `add_frame` are written."""
        return self._open

    @property
    def segment_full(self) -> bool:
        return self._writer is not None and self._writer.frames >= self.segment_frames

    @property
    def frames(self) -> int:
        """Frames recorded: in completed shards, in shards being completed and in the open stretch."""
        with self._lock:
            done = sum(s.frames for s in self.shards) + sum(self._completing.values())
        return done + self.segment_frames_written

    @property
    def segment_frames_written(self) -> int:
        """Frames in the open stretch."""
        return self._writer.frames if self._writer is not None else 0

    def start(self, info: Mapping[str, Any]) -> int:
        """Open a stretch; `info` (track, track_seed, appearance, ...) is stored with its episode.

        Returns the episode id its frames must carry (the shard's index: one episode per shard).
        The shard file is created with the first frame, so a stretch without frames leaves nothing.
        """
        self._raise_errors()
        if self._open:
            raise PlayRecordingError("a recording stretch is already open")
        self._open, self._info = True, dict(info)
        return self._next

    def add_frame(self, record: Mapping[str, Any]) -> None:
        if not self._open:
            return
        if self._writer is None:
            self._raise_errors()
            self.folder.mkdir(parents=True, exist_ok=True)
            self._writer = ShardThread(self.folder / shard_name(self._next), self.cameras, self.attrs)
        self._writer.add_frame(record)

    def stop(self) -> None:
        """Close the open stretch; its shard is completed and listed in the background. A stretch without frames leaves nothing."""
        writer, self._writer, self._open = self._writer, None, False
        if writer is None:
            return
        index, self._next = self._next, self._next + 1
        thread = threading.Thread(target=self._complete, args=(writer, self._info, index), name="drivesim-complete-shard")
        with self._lock:
            self._threads.append(thread)
            self._completing[index] = writer.frames
        thread.start()

    def _complete(self, writer: ShardThread, info: Mapping[str, Any], index: int) -> None:
        try:
            shard = writer.close(info)
            with self._lock:  # one manifest writer at a time, listing every completed shard
                self.shards.append(shard)
                self.shards.sort(key=lambda s: s.file)
                del self._completing[index]
                write_manifest(self.folder, self.shards, self.attrs["config"], self.seeds, {"kind": "play"})
        except BaseException as error:
            with self._lock:
                self._completing.pop(index, None)
                self._errors.append(error)
            return
        if self.log is not None:
            self.log(f"recorded {shard.frames} frames to {self.folder / shard.file}")

    def _raise_errors(self) -> None:
        with self._lock:
            errors, self._errors = self._errors, []
        if errors:
            raise errors[0]

    def wait(self) -> None:
        """Wait until every closed stretch is completed and listed; raise the first error of any."""
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join()
        self._raise_errors()

    def abort(self) -> None:
        """Drop the open stretch (its temporary file); completed shards and the manifest stay."""
        writer, self._writer, self._open = self._writer, None, False
        if writer is not None:
            writer.abort()

    def finish(self) -> None:
        """End of the session, however it ends: complete every stretch that can be, delete the rest."""
        try:
            self.stop()
        except BaseException:
            self.abort()
            raise
        finally:
            try:
                self.wait()
            finally:  # a stretch that failed (a full disk) raises here, and leaves no folder of its own behind
                remove_empty_folders(self._made_folders)
