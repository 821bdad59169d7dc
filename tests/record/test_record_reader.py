"""open_recording, verify_recording and RecordingDataset: round trip, DataLoader workers, clear errors."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from record_helpers import ATTRS, CAMERAS, make_frame, write_frames, write_shard
from torch.utils.data import DataLoader, Subset

from drivesim.record import (
    RecordingDataset,
    RecordingError,
    RecordingWriter,
    open_recording,
    read_manifest,
    shard_info_from_file,
    shard_name,
    verify_recording,
    write_manifest,
)
from drivesim.record.reader import check_shard, file_sha256


def test_dataset_matches_the_written_frames(recording):
    folder, records = recording
    dataset = RecordingDataset(folder, labels=("steering", "labels/throttle", "controls/steering"), extras=("state/speed", "meta/events"))
    assert len(dataset) == len(records) == 51
    for index in (0, 6, 7, 32, 33, 50, -1):
        image, label, extras = dataset[index]
        record = records[index]
        assert image.dtype == torch.uint8 and image.shape == (3, 24, 32)
        np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), record["images/center"])
        expected = np.array([record["labels/steering"], record["labels/throttle"], record["controls/steering"]], np.float32)
        assert label.dtype == torch.float32
        np.testing.assert_array_equal(label.numpy(), expected)
        assert extras["state/speed"].item() == np.float32(record["state/speed"])
        assert extras["meta/events"].dtype == torch.uint8 and extras["meta/events"].item() == record["meta/events"]
    assert dataset.locate(33)[0].name == "shard-00001.h5" and dataset.locate(33)[1:] == (0, "center")
    with pytest.raises(IndexError):
        dataset[51]


def test_dataset_takes_the_indices_and_paths_torch_code_hands_it(recording):
    # Subset(ds, torch.arange(n)) and a tensor sampler index with 0-d tensors, which divmod refused.
    folder, records = recording
    dataset = RecordingDataset(os.fsencode(folder))  # bytes were iterated as folder names
    label = torch.tensor([records[7]["labels/steering"]], dtype=torch.float32)
    assert torch.equal(dataset[torch.tensor(7)][1], label) and torch.equal(dataset[np.int64(7)][1], label)
    assert torch.equal(Subset(dataset, torch.arange(10))[7][1], label)
    images, _ = next(iter(DataLoader(dataset, sampler=torch.randperm(len(dataset)), batch_size=4)))
    assert images.shape == (4, 3, 24, 32)
    with pytest.raises(TypeError, match="a sample index must be an integer, got float"):
        dataset[1.0]
    # One field named twice (short and full) was a duplicate label column.
    with pytest.raises(RecordingError, match=r"label\(s\) given more than once: \['labels/steering'\]"):
        RecordingDataset(folder, labels=("steering", "labels/steering"))
    with pytest.raises(RecordingError, match=r"extra\(s\) given more than once: \['state/speed'\]"):
        RecordingDataset(folder, extras=("speed", "state/speed"))


def test_dataset_equals_plain_h5py(recording):
    folder, _ = recording
    dataset = RecordingDataset(folder, extras=("step", "camera"))
    assert dataset.extras == ("meta/step",)
    k = 0
    for shard in sorted(folder.glob("shard-*.h5")):
        with h5py.File(shard, "r") as f:
            for i in range(len(f["labels/steering"])):
                image, label, extras = dataset[k]
                np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), f["images/center"][i])
                assert label.item() == f["labels/steering"][i] and extras["meta/step"].item() == f["meta/step"][i]
                assert extras["camera"].item() == 0
                k += 1
    assert k == len(dataset)


def test_dataloader_with_two_workers_after_use_in_the_parent(recording):
    folder, records = recording
    dataset = RecordingDataset(folder, extras=("meta/episode", "meta/step"))
    dataset[40]  # the parent opens a shard; workers must not use its handle
    loader = DataLoader(dataset, batch_size=8, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(0))
    seen = {}
    for images, labels, extras in loader:
        assert images.shape[1:] == (3, 24, 32) and labels.shape[1:] == (1,)
        for k in range(len(images)):
            seen[(extras["meta/episode"][k].item(), extras["meta/step"][k].item())] = (images[k], labels[k])
    assert len(seen) == len(records)
    for record in records:
        image, label = seen[(record["meta/episode"], record["meta/step"])]
        np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), record["images/center"])
        assert label.item() == np.float32(record["labels/steering"])


def test_several_cameras_and_folders_and_transform(tmp_path):
    cameras = {"center": (24, 32), "left": (24, 32)}
    folders = []
    for run in range(2):
        with RecordingWriter(tmp_path / f"run{run}", cameras, ATTRS, seeds=run) as writer:
            write_frames(writer, [3, 2], first_episode=10 * run, cameras=cameras)
        folders.append(tmp_path / f"run{run}")

    def flip(image, label):
        return image.flip(-1), -label

    dataset = RecordingDataset(folders, cameras=("center", "left"), transform=flip)
    assert len(dataset) == 2 * 2 * 5
    image, label, extras = dataset[13]  # second folder, frame 1, camera "left"
    expected = make_frame(1, 10, 1, cameras)
    assert extras == {"camera": torch.tensor(1)}
    # "recording" says which folder a sample came from: frame 1 of run1 is sample 13, frame 1 of run0 sample 3.
    by_folder = RecordingDataset(folders, cameras=("center", "left"), extras=("recording",))
    assert by_folder[13][2] == {"camera": torch.tensor(1), "recording": torch.tensor(1)}
    assert by_folder[3][2]["recording"].item() == 0
    assert RecordingDataset(folders, extras=("recording", "step"))[9][2].keys() == {"recording", "meta/step"}
    np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), expected["images/left"][:, ::-1])
    assert label.item() == -np.float32(expected["labels/steering"])
    with pytest.raises(RecordingError, match="camera 'right' is not in .*run0, .*run1"):
        RecordingDataset(folders, cameras=("right",))
    with RecordingWriter(tmp_path / "run2", {**cameras, "right": cameras["left"]}, ATTRS, seeds=2) as writer:
        write_frames(writer, [2], first_episode=20, cameras={**cameras, "right": cameras["left"]})
    with pytest.raises(RecordingError, match=r"camera 'right' is not in \S*run0, \S*run1$"):  # only those lacking it
        RecordingDataset([*folders, tmp_path / "run2"], cameras=("right",))
    with pytest.raises(RecordingError, match="given more than once"):
        RecordingDataset([folders[0], folders[1], str(folders[0]) + "/"])
    with pytest.raises(RecordingError, match="camera.*given more than once"):
        RecordingDataset(folders, cameras=("left", "center", "left"))
    # Folders from a generator (a glob) are read once, not used up by the checks.
    assert len(RecordingDataset(tmp_path.glob("run[01]"), cameras=("center", "left"))) == 2 * 2 * 5
    with pytest.raises(RecordingError, match="unknown field 'steer'"):
        RecordingDataset(folders, labels=("steer",))


def test_verify_accepts_a_good_recording(recording):
    folder, _ = recording
    recording_ = verify_recording(folder)
    assert (recording_.frames, recording_.episodes) == (51, 7)
    assert recording_.attrs(1)["tracks"][0]["episode"] == 4


def test_missing_manifest(tmp_path):
    write_shard(tmp_path / shard_name(0))
    with pytest.raises(RecordingError, match="manifest.json: no manifest; the recording is incomplete"):
        open_recording(tmp_path)
    with pytest.raises(RecordingError, match="no such recording folder"):
        open_recording(tmp_path / "nothing")
    (tmp_path / "parent").mkdir()  # a folder of recordings, say, given instead of one of them
    with pytest.raises(RecordingError, match="parent: not a recording folder"):
        open_recording(tmp_path / "parent")


def test_shard_listed_but_missing(recording):
    folder, _ = recording
    (folder / "shard-00001.h5").unlink()
    with pytest.raises(RecordingError, match="shard-00001.h5 are listed in the manifest but missing"):
        RecordingDataset(folder)


def test_shard_not_in_manifest(recording):
    folder, _ = recording
    shutil.copy(folder / "shard-00001.h5", folder / "shard-00002.h5")
    with pytest.raises(RecordingError, match="shard-00002.h5 are not in the manifest"):
        open_recording(folder)


@pytest.mark.parametrize("version", [0, 2])  # older as well as newer: this reader knows version 1 only
def test_unknown_schema_version_in_manifest(recording, version):
    folder, _ = recording
    data = json.loads((folder / "manifest.json").read_text())
    data["schema_version"] = version
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(RecordingError, match=f"schema version {version} is not supported; .* reads version 1"):
        RecordingDataset(folder)


@pytest.mark.parametrize("version", [0, 2])
def test_unknown_schema_version_in_shard(tmp_path, version):
    info, _ = write_shard(tmp_path / shard_name(0))
    with h5py.File(tmp_path / shard_name(0), "r+") as f:
        f.attrs["schema_version"] = version
    size = (tmp_path / shard_name(0)).stat().st_size
    write_manifest(tmp_path, [dataclasses.replace(info, size=size)], {}, None)
    with pytest.raises(RecordingError, match=f"shard-00000.h5: schema version {version} is not supported"):
        open_recording(tmp_path)


@pytest.mark.parametrize("version", ["one", 1.7, np.array([1, 1])])
def test_a_schema_version_that_is_not_an_integer_is_refused(tmp_path, version):
    info, _ = write_shard(tmp_path / shard_name(0))
    with h5py.File(tmp_path / shard_name(0), "r+") as f:
        f.attrs["schema_version"] = version
    with pytest.raises(RecordingError, match="shard-00000.h5: schema_version .* is not an integer"):
        shard_info_from_file(tmp_path / shard_name(0))


def test_dataset_arguments_given_as_one_name_or_wrong(recording):
    folder, records = recording
    one = RecordingDataset(folder, cameras="center", labels="steering")  # a lone name, not its letters
    image, label = one[3]
    np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), records[3]["images/center"])
    assert label.shape == (1,)
    with pytest.raises(RecordingError, match=r"unknown camera\(s\) \['centre'\]"):
        RecordingDataset(folder, cameras=("centre",))
    with pytest.raises(RecordingError, match="max_open_files must be at least 1"):
        RecordingDataset(folder, max_open_files=0)


def test_truncated_shard(recording):
    folder, _ = recording
    path = folder / "shard-00000.h5"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordingError, match="shard-00000.h5: .* bytes but the manifest says .*truncated"):
        open_recording(folder)


def test_shard_that_is_not_hdf5(recording):
    folder, _ = recording
    path = folder / "shard-00000.h5"
    size = path.stat().st_size
    path.write_bytes(b"\0" * size)
    with pytest.raises(RecordingError, match="shard-00000.h5: cannot be opened as HDF5, the file is corrupt or truncated"):
        open_recording(folder)


def test_flipped_bytes_in_an_image_chunk(recording):
    folder, _ = recording
    path = folder / "shard-00001.h5"
    with h5py.File(path, "r") as f:
        chunk = f["images/center"].id.get_chunk_info(5)
    data = bytearray(path.read_bytes())
    for k in range(8):
        data[chunk.byte_offset + chunk.size // 2 + k] ^= 0xFF
    path.write_bytes(bytes(data))
    open_recording(folder)  # sizes and metadata are intact; only the data is wrong
    with pytest.raises(RecordingError, match="shard-00001.h5: SHA-256 differs from the manifest"):
        verify_recording(folder)
    dataset = RecordingDataset(folder)
    dataset[33 + 4]
    with pytest.raises(RecordingError, match="shard-00001.h5: cannot read images/center frame 5, the file is corrupt"):
        dataset[33 + 5]


@pytest.mark.parametrize("episodes, frame", [([7, 12, 5, 9], 7), ([300], 280)])  # 280: past the first VERIFY_BLOCK
def test_verify_decodes_every_image_chunk(tmp_path, episodes, frame):
    # One chunk with a wrong checksum, under a manifest whose SHA-256 matches the file: only decoding finds it.
    folder = tmp_path / "rec"
    with RecordingWriter(folder, CAMERAS, ATTRS, seeds=None, shard_frames=sum(episodes)) as writer:
        write_frames(writer, episodes)
    path = folder / shard_name(0)
    with h5py.File(path, "r+") as f:
        images = f["images/center"]
        mask, chunk = images.id.read_direct_chunk((frame, 0, 0, 0))
        images.id.write_direct_chunk((frame, 0, 0, 0), chunk[:-4] + bytes(4), mask)
    _rewrite_manifest_entry(folder, path)
    open_recording(folder)
    with pytest.raises(RecordingError, match=rf"shard-00000.h5: images/center frame {frame} does not decode"):
        verify_recording(folder)


def _damaged_then_rehashed(tmp_path, damage) -> Path:
    """A one-shard recording (episodes of 7 and 12 frames) changed in place by `damage(h5py.File)`, under a
    manifest rewritten to match: only verify's own checks can tell."""
    folder = tmp_path / "rec"
    with RecordingWriter(folder, CAMERAS, ATTRS, seeds=None, shard_frames=19) as writer:
        write_frames(writer, [7, 12])
    path = folder / shard_name(0)
    with h5py.File(path, "r+") as f:
        damage(f)
    _rewrite_manifest_entry(folder, path)
    open_recording(folder)
    return folder


def _set_value(name, frame, value):
    def damage(f):
        f[name][frame] = value

    return damage


def _set_tracks(f):
    tracks = json.loads(f.attrs["tracks"])
    tracks[1]["frames"] = 11
    f.attrs["tracks"] = json.dumps(tracks)


@pytest.mark.parametrize(
    "damage, message",
    [
        (_set_value("labels/steering", 3, 5.0), r"labels/steering: value 5.0 is outside \[-1, 1\]"),
        (_set_value("meta/driver", 10, 9), r"meta/driver: value 9 is outside \{0, 1, 2\} \(frame 10\)"),
        (_set_value("meta/episode", 2, 1), "meta/episode disagrees with the tracks attribute for episode 0"),
        (_set_tracks, "the tracks attribute disagrees with the manifest's episodes"),
    ],
)
def test_verify_checks_values_and_the_episode_table(tmp_path, damage, message):
    folder = _damaged_then_rehashed(tmp_path, damage)
    with pytest.raises(RecordingError, match=f"shard-00000.h5: .*{message}"):
        verify_recording(folder)


def _rewrite_manifest_entry(folder, path):
    """The manifest, updated for a shard file changed in place (as if it had been written so)."""
    manifest = read_manifest(folder)
    shards = [dataclasses.replace(info, size=path.stat().st_size, sha256=file_sha256(path)) if info.file == path.name else info
              for info in manifest.shards]
    write_manifest(folder, shards, manifest.config, manifest.seeds)


def test_a_shard_missing_an_image_chunk_is_refused(tmp_path):
    # HDF5 reads a chunk that was never written as zeros: a black frame with a real label, and no error.
    folder = tmp_path / "rec"
    with RecordingWriter(folder, CAMERAS, ATTRS, seeds=None, shard_frames=30) as writer:
        write_frames(writer, [7, 12, 5, 9])
    path = folder / shard_name(0)
    damaged = tmp_path / "copy.h5"
    with h5py.File(path, "r") as src, h5py.File(damaged, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for group in src:
            dst.require_group(group)
            for name, dataset in src[group].items():
                if f"{group}/{name}" != "images/center":
                    src.copy(dataset, dst.require_group(group), name)
        images = src["images/center"]
        copy = dst["images"].create_dataset("center", images.shape, images.dtype, chunks=images.chunks,
                                            compression="gzip", fletcher32=True)
        for i in range(len(images)):
            if i != 5:
                copy[i] = images[i]
    shutil.move(damaged, path)
    with pytest.raises(RecordingError, match="images/center holds 32 chunks, expected 33"):
        shard_info_from_file(path)
    _rewrite_manifest_entry(folder, path)
    with pytest.raises(RecordingError, match="shard-00000.h5: images/center holds 32 chunks"):
        RecordingDataset(folder)


@pytest.mark.parametrize("name", ["images/center", "state/x"])
def test_verify_refuses_a_chunk_stored_without_its_filters(tmp_path, name):
    # A chunk whose filter mask skips inflating and fletcher32 is read raw, unchecked: a damaged chunk index.
    folder = tmp_path / "rec"
    with RecordingWriter(folder, CAMERAS, ATTRS, seeds=None, shard_frames=30) as writer:
        write_frames(writer, [7, 12, 5, 9])
    path = folder / shard_name(0)
    with h5py.File(path, "r+") as f:
        dataset = f[name]
        chunk = np.zeros(dataset.chunks, dataset.dtype)
        dataset.id.write_direct_chunk((0,) * dataset.ndim, chunk.tobytes(), filter_mask=0b111)
    _rewrite_manifest_entry(folder, path)
    open_recording(folder)
    with pytest.raises(RecordingError, match=f"{name} has a chunk stored without its filters"):
        verify_recording(folder)


def test_damaged_hdf5_structure_is_a_recording_error_not_an_h5py_one(recording, tmp_path):
    # Bytes flipped across the start of a shard, where HDF5 keeps its object headers, heaps and B-trees:
    # every outcome is a clean pass (the bytes were data) or a RecordingError, never h5py's own exception.
    # Both readers of a shard's structure: the check against the manifest, and the one that rebuilds a
    # manifest entry (generate's resume after a run whose manifest was never written).
    folder, _ = recording
    info = open_recording(folder).shards[0]
    data = (folder / info.file).read_bytes()
    damaged = tmp_path / info.file
    outcomes = set()
    for offset in range(0, min(len(data), 8192), 32):
        copy = bytearray(data)
        for k in range(4):
            copy[offset + k] ^= 0x5A
        damaged.write_bytes(bytes(copy))
        for check in (lambda: check_shard(damaged, info), lambda: shard_info_from_file(damaged)):
            try:
                check()
                outcomes.add("passed")
            except RecordingError:
                outcomes.add("refused")
    assert "refused" in outcomes


def test_a_broken_link_to_a_shard_is_a_missing_shard(recording):
    folder, _ = recording
    path = folder / "shard-00001.h5"
    path.unlink()
    path.symlink_to(folder / "nowhere.h5")
    with pytest.raises(RecordingError, match="shard-00001.h5: shard is missing"):
        open_recording(folder)


def test_manifest_checks(recording):
    folder, _ = recording
    manifest = read_manifest(folder)
    shutil.copy(folder / "shard-00001.h5", folder / "shard-00002.h5")
    copy = dataclasses.replace(manifest.shards[1], file="shard-00002.h5")
    with pytest.raises(RecordingError, match="episode id 4 is in both shard-00001.h5 and shard-00002.h5"):
        write_manifest(folder, [*manifest.shards, copy], {}, None)
    with pytest.raises(RecordingError, match="shard-00003.h5: shard listed for the manifest does not exist"):
        write_manifest(folder, [dataclasses.replace(copy, file="shard-00003.h5")], {}, None)
    original = json.loads((folder / "manifest.json").read_text())
    for key, message in (("frames", "'frames' is 52 but the shards hold 51"), ("episodes", "'episodes' is 8 but the shards hold 7")):
        (folder / "manifest.json").write_text(json.dumps({**original, key: original[key] + 1}))
        with pytest.raises(RecordingError, match=message):
            read_manifest(folder)
    (folder / "manifest.json").write_text("{")
    with pytest.raises(RecordingError, match="not valid JSON"):
        read_manifest(folder)


def test_shard_info_from_file(tmp_path):
    info, _ = write_shard(tmp_path / shard_name(2), lengths=(3, 4))
    again, config = shard_info_from_file(tmp_path / shard_name(2))
    assert again == info and config == ATTRS["config"]
    data = (tmp_path / shard_name(2)).read_bytes()
    (tmp_path / shard_name(2)).write_bytes(data[:-1000])
    with pytest.raises(RecordingError, match="shard-00002.h5: cannot be opened as HDF5"):
        shard_info_from_file(tmp_path / shard_name(2))
