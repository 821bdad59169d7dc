"""Recording format (schema version 1): schema, shard writer, manifest, reader and torch Dataset, inspection.

A recording is a folder of HDF5 shards plus manifest.json; docs/data-format.md
describes it. Write with `ShardWriter` (one shard per process) and
`write_manifest`, or `RecordingWriter` (a whole folder from one process);
read with `open_recording` / `RecordingDataset`, or with nothing but h5py.

`RecordingDataset` (torch) and the inspect functions (cv2, matplotlib) are
imported on first use, so a process that only writes shards never imports
torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from drivesim.record.chunk import HUFFMAN_ONLY_MAX_GROWTH, IMAGE_DEFLATE_LEVEL
from drivesim.record.manifest import Manifest, ShardInfo, read_manifest, write_manifest
from drivesim.record.reader import Recording, open_recording, shard_info_from_file, verify_recording
from drivesim.record.schema import (
    CAMERA_NAMES,
    DRIVERS,
    EPISODE_KEYS,
    FIELDS,
    FIELDS_BY_NAME,
    SCHEMA_VERSION,
    Event,
    Field,
    RecordingError,
    image_field,
    shard_fields,
    validate_frames,
)
from drivesim.record.writer import RecordingWriter, ShardWriter, shard_name

__all__ = [
    "CAMERA_NAMES",
    "DRIVERS",
    "EPISODE_KEYS",
    "Event",
    "FIELDS",
    "FIELDS_BY_NAME",
    "Field",
    "HUFFMAN_ONLY_MAX_GROWTH",
    "IMAGE_DEFLATE_LEVEL",
    "Manifest",
    "Recording",
    "RecordingDataset",
    "RecordingError",
    "RecordingWriter",
    "SCHEMA_VERSION",
    "ShardInfo",
    "ShardWriter",
    "contact_sheet",
    "format_summary",
    "image_field",
    "open_recording",
    "plot_histograms",
    "read_manifest",
    "shard_fields",
    "shard_info_from_file",
    "shard_name",
    "summarize_recording",
    "validate_frames",
    "verify_recording",
    "write_manifest",
]

_LAZY = {
    "RecordingDataset": "drivesim.record.dataset",
    "contact_sheet": "drivesim.record.inspect",
    "format_summary": "drivesim.record.inspect",
    "plot_histograms": "drivesim.record.inspect",
    "summarize_recording": "drivesim.record.inspect",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'drivesim.record' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
