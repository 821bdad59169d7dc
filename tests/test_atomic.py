"""write_atomically: a reader finds the old file or the whole new one, and an interrupted write leaves no trace."""

from __future__ import annotations

import os

import pytest

from drivesim.atomic import TMP_SUFFIX, write_atomically


def test_text_and_bytes_replace_the_file(tmp_path):
    target = tmp_path / "manifest.json"
    assert write_atomically(target, "first\n") == target
    assert target.read_bytes() == b"first\n"
    write_atomically(target, b"\x00second")
    assert target.read_bytes() == b"\x00second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_write_that_fails_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, error):
    target = tmp_path / "manifest.json"
    target.write_text("old and whole")

    def fail(fd):
        raise error

    monkeypatch.setattr(os, "fsync", fail)  # the new bytes are written but never made durable
    with pytest.raises(type(error)):
        write_atomically(target, "new" * 1000)
    monkeypatch.undo()
    assert target.read_text() == "old and whole"
    assert not (tmp_path / ("manifest.json" + TMP_SUFFIX)).exists()


def test_a_leftover_temporary_is_replaced_not_reused(tmp_path):
    """A .tmp left by a killed writer may be read-only or someone else's: it is removed, never written through."""
    target = tmp_path / "weights.safetensors"
    leftover = tmp_path / ("weights.safetensors" + TMP_SUFFIX)
    leftover.write_bytes(b"half of an old write" * 100)
    leftover.chmod(0o400)
    write_atomically(target, b"complete")
    assert target.read_bytes() == b"complete" and not leftover.exists()
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
