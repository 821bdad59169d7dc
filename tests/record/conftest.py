"""Fixtures of the record tests; helpers live in record_helpers (a unique module name)."""

from __future__ import annotations

from pathlib import Path

import pytest
from record_helpers import ATTRS, CAMERAS, write_frames

from drivesim.record import RecordingWriter


@pytest.fixture
def recording(tmp_path: Path):
    """A folder with two shards (4 + 3 episodes) and a manifest; returns (folder, records in order)."""
    folder = tmp_path / "rec"
    with RecordingWriter(folder, CAMERAS, ATTRS, seeds={"run": 7}, shard_frames=30) as writer:
        records = write_frames(writer, [7, 12, 5, 9, 6, 8, 4])
    return folder, records
