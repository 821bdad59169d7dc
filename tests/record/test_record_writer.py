"""ShardWriter and RecordingWriter: plain-h5py round trip, atomic completion, validation, determinism, flat memory."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from record_helpers import ATTRS, CAMERAS, make_frame, write_frames, write_shard

from drivesim import __version__
from drivesim.record import (
    FIELDS_BY_NAME,
    SCHEMA_VERSION,
    RecordingDataset,
    RecordingError,
    RecordingWriter,
    ShardWriter,
    open_recording,
    read_manifest,
    shard_info_from_file,
    shard_name,
    write_manifest,
)
from drivesim.record.writer import SCALAR_CHUNK


def test_round_trip_with_plain_h5py(tmp_path):
    path = tmp_path / shard_name(3)
    info, records = write_shard(path, lengths=(7, 12, 5), batch_frames=4)
    assert path.name == "shard-00003.h5" and sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert (info.file, info.frames, info.episode_ids, info.size) == (path.name, 24, (0, 1, 2), path.stat().st_size)
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    with h5py.File(path, "r") as f:
        images = f["images/center"]
        assert images.dtype == np.uint8 and images.shape == (24, 24, 32, 3)
        assert images.chunks == (1, 24, 32, 3) and images.compression == "gzip" and images.fletcher32
        np.testing.assert_array_equal(images[...], np.stack([r["images/center"] for r in records]))
        for name, field in FIELDS_BY_NAME.items():
            values = f[name][...]
            assert values.dtype == field.np_dtype and values.shape == (24,), name
            assert f[name].compression == "gzip" and f[name].fletcher32, name
            expected = np.array([r[name] for r in records]).astype(field.np_dtype)
            np.testing.assert_array_equal(values, expected, err_msg=name)
        assert f.attrs["schema_version"] == SCHEMA_VERSION and f.attrs["drivesim_version"] == __version__
        assert json.loads(f.attrs["config"]) == ATTRS["config"]
        assert json.loads(f.attrs["camera_intrinsics"]) == ATTRS["camera_intrinsics"]
        tracks = json.loads(f.attrs["tracks"])
    assert [(t["episode"], t["first_frame"], t["frames"], t["track_seed"]) for t in tracks] == [
        (0, 0, 7, 100), (1, 7, 12, 101), (2, 19, 5, 102)
    ]
    assert tracks[1]["track"] == "seed-101" and tracks[1]["randomization"] == {"hue": 0.1}


def test_several_cameras(tmp_path):
    cameras = {"center": (24, 32), "left": (24, 32), "right": (24, 32)}
    info, records = write_shard(tmp_path / shard_name(0), lengths=(4,), cameras=cameras)
    assert info.cameras == cameras
    with h5py.File(tmp_path / shard_name(0), "r") as f:
        for camera in cameras:
            np.testing.assert_array_equal(f[f"images/{camera}"][...], np.stack([r[f"images/{camera}"] for r in records]))


def test_identical_input_gives_identical_bytes(tmp_path):
    digests = []
    for run in range(2):
        if run:
            time.sleep(1.1)  # HDF5 object timestamps have 1 s resolution: they would differ now
        with RecordingWriter(tmp_path / f"run{run}", CAMERAS, ATTRS, seeds={"run": 1}, shard_frames=20) as writer:
            write_frames(writer, [9, 14, 6])
        files = sorted((tmp_path / f"run{run}").iterdir())
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files})
    assert list(digests[0]) == ["manifest.json", "shard-00000.h5", "shard-00001.h5"]
    assert digests[0] == digests[1]


_WRITE_THREE_CAMERAS = """
import hashlib, sys
from pathlib import Path
from record_helpers import write_shard
cameras = {"center": (24, 32), "left": (24, 32), "right": (24, 32)}
info, _ = write_shard(Path(sys.argv[1]), lengths=(9, 14), cameras=cameras, batch_frames=4)
print(info.sha256)
"""


def test_several_cameras_give_the_same_bytes_whatever_the_hash_seed(tmp_path):
    # The order image datasets are written in sets the file's bytes; a set's order follows PYTHONHASHSEED.
    helpers = Path(__file__).parent
    digests = set()
    for seed in ("1", "2", "3"):
        path = tmp_path / seed / shard_name(0)
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.pathsep.join([str(helpers), os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run([sys.executable, "-c", _WRITE_THREE_CAMERAS, str(path)], env=env, capture_output=True, text=True, check=True)
        digests.add(done.stdout.strip())
    assert len(digests) == 1


def test_batches_straddling_scalar_chunks_read_back_exactly(tmp_path):
    # Scalars are written a whole chunk at a time; batches of 7 do not divide it, and the shard ends mid-chunk.
    lengths = (SCALAR_CHUNK - 3, SCALAR_CHUNK + 10)
    _, records = write_shard(tmp_path / shard_name(0), lengths=lengths, batch_frames=7)
    with h5py.File(tmp_path / shard_name(0), "r") as f:
        assert f["labels/steering"].chunks == (SCALAR_CHUNK,) and len(f["labels/steering"]) == sum(lengths)
        for name, field in FIELDS_BY_NAME.items():
            expected = np.array([r[name] for r in records]).astype(field.np_dtype)
            np.testing.assert_array_equal(f[name][...], expected, err_msg=name)
        for i in (0, SCALAR_CHUNK - 1, SCALAR_CHUNK, sum(lengths) - 1):
            np.testing.assert_array_equal(f["images/center"][i], records[i]["images/center"])


def test_failed_write_fails_the_shard_and_removes_temp_file(tmp_path, monkeypatch):
    def disk_full(self, batch, start):
        raise OSError("No space left on device")

    monkeypatch.setattr(ShardWriter, "_write_batch", disk_full)
    with pytest.raises(RecordingError, match="writing frames failed: No space left on device"):
        write_shard(tmp_path / shard_name(0), lengths=(9, 14, 6), batch_frames=4)
    assert list(tmp_path.iterdir()) == []


def _hdf5_disk_full(*args):
    # HDF5's own message spans lines and carries a time and a buffer address.
    raise OSError(errno.ENOSPC, "Can't write data (file write failed: time = Sat Nov 21 2026\n, errno = 28, buf = 0x55d0)")


def test_disk_full_while_writing_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setattr(ShardWriter, "_write_batch", _hdf5_disk_full)
    with pytest.raises(RecordingError) as raised:
        write_shard(tmp_path / shard_name(0), lengths=(9, 14, 6), batch_frames=4)
    assert str(raised.value) == f"{tmp_path / shard_name(0)}: writing frames failed: No space left on device"
    assert list(tmp_path.iterdir()) == []


def test_disk_full_while_completing_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setattr(ShardWriter, "_write_scalars", _hdf5_disk_full)
    with pytest.raises(RecordingError, match=r"shard-00000.h5: completing the shard failed: No space left on device$"):
        write_shard(tmp_path / shard_name(0), lengths=(5,), batch_frames=4)
    assert list(tmp_path.iterdir()) == []


def test_interrupt_during_a_write_fails_the_shard(tmp_path, monkeypatch):
    def interrupted(self, batch, start):
        raise KeyboardInterrupt

    writer = ShardWriter(tmp_path / shard_name(0), CAMERAS, ATTRS, batch_frames=4)
    monkeypatch.setattr(ShardWriter, "_write_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_frames(writer, [6])
    with pytest.raises(RecordingError, match="an earlier write failed; the shard was discarded"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_exception_inside_writer_removes_temp_file(tmp_path):
    path = tmp_path / shard_name(0)
    with pytest.raises(RuntimeError, match="renderer broke"):
        with ShardWriter(path, CAMERAS, ATTRS) as writer:
            write_frames(writer, [5])
            writer.add_frame(make_frame(5, 1, 0))
            assert (tmp_path / "shard-00000.h5.tmp").exists()
            raise RuntimeError("renderer broke")
    assert list(tmp_path.iterdir()) == []


def test_bad_value_found_at_flush_names_frame_episode_and_step_and_removes_temp_file(tmp_path):
    with pytest.raises(RecordingError, match=r"shard-00000.h5: labels/steering: value 2.0 is outside \[-1, 1\] \(frame 6\) \(episode 1, step 1\)"):
        with ShardWriter(tmp_path / shard_name(0), CAMERAS, ATTRS, batch_frames=4) as writer:
            write_frames(writer, [5])
            for step in range(4):
                record = make_frame(5 + step, 1, step)
                if step == 1:
                    record["labels/steering"] = 2.0
                writer.add_frame(record)
    assert list(tmp_path.iterdir()) == []


def test_a_bad_value_in_the_last_partial_batch_is_caught_when_closing(tmp_path):
    """The frames after the last full batch are validated by close() too: a shard of 5 frames in batches of 64."""
    with pytest.raises(RecordingError, match=r"state/speed: value nan is not finite \(frame 3\) \(episode 0, step 3\)"):
        with ShardWriter(tmp_path / shard_name(0), CAMERAS, ATTRS, batch_frames=64) as writer:
            for i in range(5):
                record = make_frame(i, 0, i)
                if i == 3:
                    record["state/speed"] = float("nan")
                writer.add_frame(record)
            writer.end_episode({"track": "a", "track_seed": None})
    assert list(tmp_path.iterdir()) == []


def test_add_frame_refuses_bad_frames_at_once(tmp_path):
    with ShardWriter(tmp_path / shard_name(0), CAMERAS, ATTRS) as writer:
        with pytest.raises(RecordingError, match=r"frame 0: unknown field\(s\) \['labels/steer'\], missing field\(s\) \[\]"):
            writer.add_frame({**make_frame(0, 0, 0), "labels/steer": 0.0})
        with pytest.raises(RecordingError, match="frame 0: images/center: expected uint8 values, got dtype float64"):
            writer.add_frame({**make_frame(0, 0, 0), "images/center": np.zeros((24, 32, 3))})
        with pytest.raises(RecordingError, match=r"frame 0: images/center: expected shape \(24, 32, 3\), got \(32, 24, 3\)"):
            writer.add_frame({**make_frame(0, 0, 0), "images/center": np.zeros((32, 24, 3), np.uint8)})
        writer.add_frame(make_frame(0, 0, 0))
        with pytest.raises(RecordingError, match="meta/episode 1 but episode 0 is not ended"):
            writer.add_frame(make_frame(1, 1, 0))
        with pytest.raises(RecordingError, match="episode info needs track_seed"):
            writer.end_episode({"track": "a"})
        with pytest.raises(RecordingError, match="episode info says frames 5 but the writer counted 1"):
            writer.end_episode({"track": "a", "track_seed": 1, "frames": 5})
        with pytest.raises(RecordingError, match="plain JSON"):
            writer.end_episode({"track": "a", "track_seed": 1, "bad": float("nan")})
        writer.end_episode({"track": "a", "track_seed": None})
        with pytest.raises(RecordingError, match="episode 0 was already ended"):
            writer.add_frame(make_frame(1, 0, 0))
        with pytest.raises(RecordingError, match="end_episode\\(\\) without any frame"):
            writer.end_episode({"track": "a", "track_seed": 1})
    assert writer.info.frames == 1 and writer.info.episode_ids == (0,)


def test_unfinished_episode_or_empty_shard_is_discarded(tmp_path):
    with pytest.raises(RecordingError, match="episode 0 has 3 frame\\(s\\) but was not ended"):
        with ShardWriter(tmp_path / shard_name(0), CAMERAS, ATTRS) as writer:
            for step in range(3):
                writer.add_frame(make_frame(step, 0, step))
    with pytest.raises(RecordingError, match="no frames were written"):
        with ShardWriter(tmp_path / shard_name(1), CAMERAS, ATTRS):
            pass
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_bad_paths_and_attrs(tmp_path):
    with pytest.raises(RecordingError, match="must look like shard-00003.h5"):
        ShardWriter(tmp_path / "data.h5", CAMERAS, ATTRS)
    with pytest.raises(RecordingError, match="need camera_intrinsics"):
        ShardWriter(tmp_path / shard_name(0), CAMERAS, {"config": {}})
    with pytest.raises(RecordingError, match="tracks are set by the writer"):
        ShardWriter(tmp_path / shard_name(0), CAMERAS, {**ATTRS, "tracks": []})
    write_shard(tmp_path / shard_name(0), lengths=(2,))
    with pytest.raises(RecordingError, match="already exists"):
        ShardWriter(tmp_path / shard_name(0), CAMERAS, ATTRS)
    with pytest.raises(RecordingError, match="outside"):
        shard_name(100000)


def test_a_recording_without_the_centre_camera_that_earlier_writers_allowed_still_reads(tmp_path):
    folder = tmp_path / "rec"
    folder.mkdir()
    cameras = {"center": (24, 32), "left": (24, 32)}
    _, records = write_shard(folder / shard_name(0), lengths=(4,), cameras=cameras)
    with h5py.File(folder / shard_name(0), "r+") as f:  # as a left-only writer made it
        del f["images/center"]
    info, config = shard_info_from_file(folder / shard_name(0))
    write_manifest(folder, [info], config, seeds=None)
    assert dict(open_recording(folder).cameras) == {"left": (24, 32)}
    image, _ = RecordingDataset(folder, cameras=("left",))[3]
    assert np.array_equal(image.permute(1, 2, 0).numpy(), records[3]["images/left"])


def test_recording_writer_refuses_bad_cameras_and_attrs_when_made_and_makes_no_folder(tmp_path):
    # Once found by the first add_frame, after the folder was made; and a recording without the centre
    # camera was written whole, to be refused by every reader that defaults to it.
    folder = tmp_path / "new" / "rec"
    cases = [({"left": (24, 32)}, ATTRS, "needs the center camera, and may add left and right; got 'left'"),
             ({}, ATTRS, "needs the center camera.*got none"),
             ({"center": (24, 32), "rear": (24, 32)}, ATTRS, "unknown camera 'rear'"),
             (CAMERAS, {"config": {}}, f"{folder}: shard attrs need camera_intrinsics"),
             (CAMERAS, {**ATTRS, "drivesim_version": "0"}, "drivesim_version are set by the writer")]
    for cameras, attrs, message in cases:
        with pytest.raises(RecordingError, match=message):
            RecordingWriter(folder, cameras, attrs, seeds=None)
        assert not (tmp_path / "new").exists()


def test_recording_writer_rolls_shards_of_whole_episodes(recording):
    folder, records = recording
    manifest = read_manifest(folder)
    assert [(s.file, s.frames, s.episode_ids) for s in manifest.shards] == [
        ("shard-00000.h5", 33, (0, 1, 2, 3)), ("shard-00001.h5", 18, (4, 5, 6))
    ]
    assert (manifest.frames, manifest.episodes, manifest.seeds, manifest.config) == (51, 7, {"run": 7}, ATTRS["config"])
    assert manifest.schema_version == SCHEMA_VERSION and dict(manifest.cameras) == CAMERAS
    text = (folder / "manifest.json").read_text()
    assert json.loads(text) == manifest.to_dict() and '"episode_ids": [0, 1, 2, 3]' in text
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "shard-00000.h5", "shard-00001.h5"]
    with pytest.raises(RecordingError, match="already holds a recording"):
        RecordingWriter(folder, CAMERAS, ATTRS, seeds=None)


def test_recording_writer_failure_leaves_no_manifest_and_no_temp_file(tmp_path):
    with pytest.raises(RuntimeError):
        with RecordingWriter(tmp_path, CAMERAS, ATTRS, seeds=None, shard_frames=10) as writer:
            write_frames(writer, [12, 3])
            raise RuntimeError("stop")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-00000.h5"]
    # A recording that fails before its first shard is complete, or holds no frame at all, leaves no folder.
    with pytest.raises(RuntimeError):
        with RecordingWriter(tmp_path / "new" / "rec", CAMERAS, ATTRS, seeds=None) as writer:
            write_frames(writer, [3])
            raise RuntimeError("stop")
    with pytest.raises(RecordingError, match="at least one shard"):
        with RecordingWriter(tmp_path / "new" / "rec", CAMERAS, ATTRS, seeds=None):
            pass
    assert not (tmp_path / "new").exists()


def test_writer_memory_stays_flat(tmp_path):
    """Python-side peak memory while writing 4x more frames grows by far less than the extra frames' size."""
    cameras = {"center": (120, 160)}
    frame = make_frame(0, 0, 0, cameras)
    peaks = []
    for run, frames in enumerate((200, 800)):
        tracemalloc.start()
        with ShardWriter(tmp_path / shard_name(run), cameras, ATTRS) as writer:
            for step in range(frames):
                writer.add_frame({**frame, "meta/step": step})
            writer.end_episode({"track": "a", "track_seed": 0})
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    extra_frames_bytes = 600 * 120 * 160 * 3
    assert peaks[1] - peaks[0] < 0.1 * extra_frames_bytes, peaks


def test_writing_does_not_import_torch():
    code = "import sys, drivesim.record; from drivesim.record import ShardWriter, open_recording; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
