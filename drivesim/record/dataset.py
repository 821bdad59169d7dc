"""`RecordingDataset`: frames and labels of one or more recording folders as a torch Dataset.

The Dataset opens no file until a sample is asked for, and then in the
process asking: h5py handles never cross a fork into DataLoader workers
(the process id is checked on every access). Label and extra fields of a
shard are read once per worker and kept as small arrays; images are read
one chunk (= one frame) at a time. The index is built from the manifests'
frame counts, without reading any data.
"""

from __future__ import annotations

import operator
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from drivesim.record.reader import open_recording, open_shard
from drivesim.record.schema import CAMERA_NAMES, FIELDS_BY_NAME, RecordingError


def field_name(name: str) -> str:
    """The schema name of scalar field `name`: full ("state/speed") or short ("speed"; "steering" is labels/steering)."""
    if "/" in name:
        matches = [name] if name in FIELDS_BY_NAME else []
    elif f"labels/{name}" in FIELDS_BY_NAME:
        matches = [f"labels/{name}"]
    else:
        matches = [full for full in FIELDS_BY_NAME if full.split("/")[1] == name]
    if len(matches) != 1:
        raise RecordingError(f"unknown field {name!r}; known: {', '.join(FIELDS_BY_NAME)}")
    return matches[0]


_SAMPLE_EXTRAS = ("camera", "recording")
"""Extras that are not schema fields but where a sample comes from."""

_TORCH_DTYPES = {"float32": torch.float32, "int32": torch.int32, "uint8": torch.uint8}


class RecordingDataset(Dataset):
    """Samples of one or more recording folders for torch.

    `labels` and `extras` name scalar fields of the schema, in full
    ("state/speed") or short ("speed"; "steering" means labels/steering).
    Each sample is one frame of one camera: `(image, label)`, or
    `(image, label, extras)` when `extras` are asked for or several cameras
    are used. `image` is a uint8 tensor (3, H, W); `label` a float32 tensor
    with one value per entry of `labels`; `extras` maps the full schema
    name of each field in `extras` (`extras=("speed",)` gives
    `extras["state/speed"]`) to a 0-d tensor of its dtype, "camera" to the
    camera's index in `cameras` when there are several (or when asked for),
    and "recording" to the index in `folders` of the frame's recording when
    asked for (which DAgger iteration, say). `transform(image,
    label)` returns the pair to use instead (augmentations that mirror an
    image must mirror the steering too; it runs before any side-camera
    correction a caller adds from extras["camera"], and a mirrored left
    frame is a right one, so add the correction inside `transform` or not
    mirror side frames).
    """

    def __init__(
        self,
        folders: str | Path | Sequence[str | Path],
        cameras: Sequence[str] = ("center",),
        labels: Sequence[str] = ("steering",),
        extras: Sequence[str] = (),
        transform: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
        max_open_files: int = 64,
    ) -> None:
        # Read once: a generator (Path.glob) would be used up by the checks below and leave no recordings.
        folders = [folders] if isinstance(folders, (str, bytes, os.PathLike)) else list(folders)
        folders = [os.fsdecode(folder) if isinstance(folder, bytes) else folder for folder in folders]
        if extras is None:
            extras = ()
        # One name alone is a common way to ask for one camera or label; iterating it would ask for its letters.
        cameras, labels, extras = ((names,) if isinstance(names, str) else names for names in (cameras, labels, extras))
        if not folders or not cameras or not labels:
            raise RecordingError("RecordingDataset needs at least one folder, camera and label")
        unknown = [camera for camera in cameras if camera not in CAMERA_NAMES]
        if unknown:
            raise RecordingError(f"unknown camera(s) {unknown}; cameras are {list(CAMERA_NAMES)}")
        if len(set(cameras)) != len(cameras):  # every frame of that camera would be two samples
            raise RecordingError(f"camera(s) given more than once: {list(cameras)}")
        if max_open_files < 1:
            raise RecordingError(f"max_open_files must be at least 1, got {max_open_files}")
        resolved = [Path(folder).resolve() for folder in folders]
        repeated = sorted({str(path) for path in resolved if resolved.count(path) > 1})
        if repeated:  # every frame would be a sample twice, and validation splits would leak
            raise RecordingError(f"recording(s) given more than once: {', '.join(repeated)}")
        self.cameras = tuple(cameras)
        """Camera names; with several, sample i is camera i % len(cameras) of frame i // len(cameras)."""
        self.labels = tuple(field_name(name) for name in labels)
        """Full schema names of the label fields, e.g. ("labels/steering",)."""
        self.extras = tuple(field_name(name) for name in extras if name not in _SAMPLE_EXTRAS)
        """Full schema names of the extra fields."""
        for kind, names in (("label", self.labels), ("extra", self.extras)):
            if len(set(names)) != len(names):  # "steering" and "labels/steering" are one field: a column twice
                raise RecordingError(f"{kind}(s) given more than once: {[name for name in dict.fromkeys(names) if names.count(name) > 1]}")
        self.recordings = [open_recording(folder) for folder in folders]
        """The checked recordings, in the order given."""
        self.transform = transform
        self.max_open_files = max_open_files
        self._with_camera = len(self.cameras) > 1 or "camera" in extras
        self._with_recording = "recording" in extras
        self._with_extras = bool(self.extras) or self._with_camera or self._with_recording
        for camera in self.cameras:
            shapes = {tuple(r.cameras[camera]) if camera in r.cameras else None for r in self.recordings}
            if None in shapes:
                lacking = [str(r.folder) for r in self.recordings if camera not in r.cameras]
                raise RecordingError(f"camera {camera!r} is not in {', '.join(lacking)}")
            if len(shapes) > 1:
                raise RecordingError(f"camera {camera!r} has different image sizes across recordings: {sorted(shapes)}")
        self._shards = [(r, i) for r in self.recordings for i in range(len(r.shards))]
        self._shard_recording = [k for k, r in enumerate(self.recordings) for _ in range(len(r.shards))]
        counts = [r.shards[i].frames for r, i in self._shards]
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.frames = int(self._starts[-1])
        """Frames in all recordings together."""
        self._reset_handles()

    def _reset_handles(self) -> None:
        self._pid: int | None = None
        self._files: OrderedDict[int, tuple[h5py.File, dict[str, h5py.Dataset]]] = OrderedDict()
        self._columns: dict[int, tuple[np.ndarray, dict[str, np.ndarray]]] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_pid=None, _files=OrderedDict(), _columns={})
        return state

    def __len__(self) -> int:
        return self.frames * len(self.cameras)

    def _split(self, index: int) -> tuple[int, int, int]:
        """(shard number over all recordings, frame in that shard, camera index) of sample `index`."""
        try:
            index = operator.index(index)  # a numpy integer or a one-element integer tensor (a torch sampler's) too
        except TypeError:
            raise TypeError(f"a sample index must be an integer, got {type(index).__name__}") from None
        if not -len(self) <= index < len(self):
            raise IndexError(f"sample {index} is out of range for {len(self)} samples")
        frame, camera = divmod(index % len(self), len(self.cameras))
        shard = int(np.searchsorted(self._starts, frame, side="right")) - 1
        return shard, frame - int(self._starts[shard]), camera

    def _path(self, shard: int) -> Path:
        recording, i = self._shards[shard]
        return recording.shard_path(i)

    def locate(self, index: int) -> tuple[Path, int, str]:
        """(shard path, frame in the shard, camera name) of sample `index`."""
        shard, local, camera = self._split(index)
        return self._path(shard), local, self.cameras[camera]

    def _images(self, shard: int) -> dict[str, h5py.Dataset]:
        """The image datasets (camera -> dataset) of `shard`, opened in this process."""
        if self._pid != os.getpid():
            # A new process (a DataLoader worker after fork): inherited handles
            # belong to the parent and are dropped, never used or closed.
            self._reset_handles()
            self._pid = os.getpid()
        entry = self._files.get(shard)
        if entry is not None:
            self._files.move_to_end(shard)
            return entry[1]
        f = open_shard(self._path(shard))
        if shard not in self._columns:
            try:
                label = np.stack([f[name][...] for name in self.labels], axis=1).astype(np.float32)
                extras = {name: f[name][...] for name in self.extras}
            except OSError as error:
                f.close()
                raise RecordingError(f"{self._path(shard)}: cannot read the label and extra fields, the file is corrupt ({error})") from None
            self._columns[shard] = (label, extras)
        images = {camera: f["images/" + camera] for camera in self.cameras}
        self._files[shard] = (f, images)
        if len(self._files) > self.max_open_files:
            self._files.popitem(last=False)[1][0].close()
        return images

    def __getitem__(self, index: int):
        shard, local, camera_index = self._split(index)
        camera = self.cameras[camera_index]
        images = self._images(shard)
        try:
            pixels = images[camera][local]
        except OSError as error:
            raise RecordingError(f"{self._path(shard)}: cannot read images/{camera} frame {local}, the file is corrupt ({error})") from None
        image = torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
        labels, columns = self._columns[shard]
        label = torch.from_numpy(labels[local].copy())
        if self.transform is not None:
            image, label = self.transform(image, label)
        if not self._with_extras:
            return image, label
        extras: dict[str, torch.Tensor] = {
            name: torch.tensor(values[local].item(), dtype=_TORCH_DTYPES[values.dtype.name]) for name, values in columns.items()
        }
        if self._with_camera:
            extras["camera"] = torch.tensor(camera_index)
        if self._with_recording:
            extras["recording"] = torch.tensor(self._shard_recording[shard])
        return image, label, extras


__all__ = ["RecordingDataset", "field_name"]
