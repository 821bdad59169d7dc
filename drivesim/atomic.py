"""Writing a file so that a reader finds the old file or the whole new one, never part of one.

Every file drivesim writes that someone may be reading, or that a crash may
interrupt (manifests, checkpoints, track files, reports and their pictures),
goes through `write_atomically`: a temporary file beside the target, flushed
and fsynced, renamed over the target, then the folder fsynced so the rename
survives a power cut. Pictures are encoded in memory first (`write_figure`,
`write_png`), so that a full disk or Ctrl-C never leaves a PNG cut short.

A run that makes an output folder and ends with nothing in it removes the
folders it made (`missing_folders` before, `remove_empty_folders` after), so
that a failed or interrupted run leaves no empty folder behind.

A run that writes a folder holds it alone (`writing_alone`): a second run
into it is refused instead of clearing away the first one's files as
leftovers, or writing the same temporary files.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from drivesim.errors import DrivesimError

TMP_SUFFIX = ".tmp"
"""Appended to a file's name while it is being written."""


def write_atomically(path: Path | str, data: bytes | str) -> Path:
    """Write `data` (text is written as UTF-8 with \\n line ends) to `path`; returns `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    # A leftover from an interrupted write is removed, not truncated: truncating keeps its mode and owner.
    tmp.unlink(missing_ok=True)
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None:  # a full disk: say where
            error.filename = str(path)
        raise
    fsync_dir(path.parent)
    return path


def write_figure(path: Path | str, figure: Any, **savefig: Any) -> Path:
    """A matplotlib `figure` as a PNG file at `path`, whole or absent; `savefig` as matplotlib's."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **savefig)
    return write_atomically(path, buffer.getvalue())


def write_png(path: Path | str, image: Any) -> Path:
    """An OpenCV image (BGR uint8 array) as a PNG file at `path`, whole or absent."""
    import cv2

    encoded, data = cv2.imencode(".png", image)
    if not encoded:
        raise OSError(f"{path}: OpenCV could not encode the image as PNG")
    return write_atomically(path, data.tobytes())


def missing_folders(path: Path | str) -> list[Path]:
    """`path` and those of its parents that do not exist yet, deepest first: what making `path` would make."""
    missing = []
    for folder in (Path(path), *Path(path).parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove `folders` (deepest first, as `missing_folders` lists them) while they are empty folders."""
    for folder in folders:
        if not folder.is_dir() or any(folder.iterdir()):
            return
        folder.rmdir()


def fsync_dir(folder: Path | str) -> None:
    """Make a rename in `folder` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class FolderInUse(DrivesimError):
    """Another drivesim run is writing the folder."""


@contextmanager
def writing_alone(folder: Path | str, option: str) -> Iterator[None]:
    """Hold an exclusive lock on the existing `folder` (flock on the folder itself: no lock file to leave behind)
    while a run writes it; FolderInUse, naming the command-line `option` that chose it, if another run holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; runs are not guarded against each other
        yield
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except PermissionError:  # a folder this user may write but not list (mode 0300): no lock, as on Windows
        yield
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderInUse(f"{folder} is being written by another drivesim run; wait for it to end, or choose another {option}") from None
        except OSError:  # a file system without flock on folders (NFS: EBADF, Lustre without -o flock: ENOSYS)
            pass
        yield
    finally:
        os.close(descriptor)  # releases the lock


def check_not_being_written(folder: Path | str, option: str) -> None:
    """FolderInUse if another run is writing `folder` now: asked before judging what is in it, whose
    half-written files are that run's, not the leftovers of an interrupted one."""
    if Path(folder).is_dir():
        with writing_alone(folder, option):
            pass
