"""Which command's output a folder holds, so that no command writes into another's.

A recording (`generate`, `eval --record`, `play --record`), a model
(`train`), a DAgger experiment (`dagger`) and a set of tracks (`tracks
generate`) each need a folder of their own: shards written beside track
files make the folder unreadable as tracks, and a DAgger experiment run into
a recording buries it under data/, models/ and eval/. Each kind is known by
files that only it writes.
"""

from __future__ import annotations

from pathlib import Path

from drivesim.errors import DrivesimError
from drivesim.learn.config import WEIGHTS_FILE

RECORDING = "a recording"
MODEL = "a model"
DAGGER = "a DAgger experiment"
TRACKS = "track files"

_MARKERS = {
    MODEL: (WEIGHTS_FILE, "train-log.json"),
    DAGGER: ("dagger-config.json", "dagger.json"),
}
_OTHER_JSON = {"metrics.json", *_MARKERS[MODEL], *_MARKERS[DAGGER]}
"""JSON files the other kinds write (a recording's manifest.json has answered before): a folder's track files
are its other JSON files that hold a track."""


class OutputFolderError(DrivesimError):
    """An output folder holds another command's output."""


def output_held(folder: Path | str) -> str | None:
    """The kind of output `folder` holds (RECORDING, MODEL, DAGGER or TRACKS), or None for a folder that holds
    none of them (absent, empty, or other files)."""
    from drivesim.record.schema import MANIFEST_NAME, SHARD_PATTERN, TMP_SUFFIX
    from drivesim.track import is_track_file

    folder = Path(folder)
    if not folder.is_dir():
        return None
    names = {path.name for path in folder.iterdir()}
    for kind, markers in _MARKERS.items():
        if names & set(markers):
            return kind
    if MANIFEST_NAME in names or any(SHARD_PATTERN.match(name.removesuffix(TMP_SUFFIX)) for name in names):
        return RECORDING  # an interrupted generate leaves shards and no manifest
    for name in sorted(names - _OTHER_JSON):
        if name.endswith(".json") and is_track_file(folder / name):
            return TRACKS
    return None


def check_output_folder(folder: Path | str, option: str, kind: str) -> None:
    """OutputFolderError unless `folder` (given as `option`) is new, or holds nothing but `kind` output."""
    held = output_held(folder)
    if held is not None and held != kind:
        raise OutputFolderError(f"{option}: {folder} holds {held}, not {kind}; choose another {option}")
