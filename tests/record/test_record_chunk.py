"""Image chunks: Huffman-only for noisy frames, zlib level 1 otherwise; HDF5's checksum; plain h5py reads both."""

from __future__ import annotations

import zlib

import h5py
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from record_helpers import ATTRS, make_frame

from drivesim.record import RecordingWriter, ShardWriter, shard_name, verify_recording
from drivesim.record.chunk import (
    BLOCK_WORDS,
    HUFFMAN_ONLY_MAX_GROWTH,
    IMAGE_DEFLATE_LEVEL,
    choose_image_codec,
    deflate_huffman_only,
    hdf5_fletcher32,
    huffman_only_chunk,
)

SIZE = (120, 160)
CAMERAS = {"center": SIZE}


def _clean_image(i: int) -> np.ndarray:
    """Flat bands and steps, as in a frame without sensor noise: LZ77 matches pay."""
    y, x = np.mgrid[: SIZE[0], : SIZE[1]]
    return np.stack([(x // 16 * 9 + i) % 256, (y // 6 * 7) % 256, np.full_like(x, 90)], axis=-1).astype(np.uint8)


def _noisy_image(i: int, std: float = 3.0) -> np.ndarray:
    """The clean frame with sensor noise of `std` counts: LZ77 finds next to nothing to match."""
    noise = np.random.default_rng(i).normal(0.0, std, (*SIZE, 3))
    return np.clip(_clean_image(i) + np.rint(noise), 0, 255).astype(np.uint8)


def _hdf5_trailer(tmp_path, data: bytes) -> int:
    """The fletcher32 HDF5 itself appends to a chunk holding `data` (no other filter)."""
    path = tmp_path / "fletcher.h5"
    with h5py.File(path, "w") as f:
        dataset = f.create_dataset("x", data=np.frombuffer(data, np.uint8), chunks=(len(data),), fletcher32=True)
        _, stored = dataset.id.read_direct_chunk((0,))
    assert stored[:-4] == data
    return int.from_bytes(stored[-4:], "little")


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=1, max_size=3000))
@example(data=b"\x00")
@example(data=b"\xff")
@example(data=b"\xff" * 4000)  # every word 0xffff: both sums are nonzero multiples of 65535
@example(data=b"\x00\x01" * 65535)  # sum 1 exactly 65535
def test_fletcher32_equals_what_hdf5_appends(tmp_path_factory, data):
    assert hdf5_fletcher32(data) == _hdf5_trailer(tmp_path_factory.mktemp("f"), data)


@pytest.mark.parametrize("size", [2 * BLOCK_WORDS, 2 * BLOCK_WORDS + 1, 5 * BLOCK_WORDS + 3])
def test_fletcher32_across_summation_blocks(tmp_path, size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert hdf5_fletcher32(data) == _hdf5_trailer(tmp_path, data)


def test_noisy_frames_are_huffman_coded_and_clean_ones_are_not():
    for i in range(3):
        clean, noisy = _clean_image(i), _noisy_image(i)
        assert choose_image_codec(clean) == "zlib"
        assert choose_image_codec(noisy) == "huffman-only"
        huffman, standard = len(deflate_huffman_only(noisy)), len(zlib.compress(noisy.tobytes(), IMAGE_DEFLATE_LEVEL))
        assert huffman <= (1 + HUFFMAN_ONLY_MAX_GROWTH) * standard
        assert len(deflate_huffman_only(clean)) > (1 + HUFFMAN_ONLY_MAX_GROWTH) * len(zlib.compress(clean.tobytes(), IMAGE_DEFLATE_LEVEL))


def test_huffman_only_chunks_inflate_to_the_c_order_bytes():
    image = _noisy_image(0)
    flipped = image[:, ::-1]
    for source in (image, flipped):
        chunk = huffman_only_chunk(source)
        assert zlib.decompress(chunk[:-4]) == np.ascontiguousarray(source).tobytes()
        assert int.from_bytes(chunk[-4:], "little") == hdf5_fletcher32(chunk[:-4])


def _frames(images: list[np.ndarray], episode: int = 0) -> list[dict]:
    records = []
    for step, image in enumerate(images):
        record = make_frame(step, episode, step, cameras={})
        record["images/center"] = image
        records.append(record)
    return records


def test_a_shard_with_clean_and_noisy_batches_reads_back_with_plain_h5py(tmp_path):
    """Batch by batch the writer picks the codec; HDF5 inflates and checks both kinds of chunk."""
    images = [_clean_image(i) for i in range(4)] + [_noisy_image(i) for i in range(4, 8)] + [_clean_image(8), _noisy_image(9)]
    path = tmp_path / shard_name(0)
    with ShardWriter(path, CAMERAS, ATTRS, batch_frames=4) as writer:
        for record in _frames(images):
            writer.add_frame(record)
        writer.end_episode({"track": "t", "track_seed": None})
    with h5py.File(path, "r") as f:
        dataset = f["images/center"]
        np.testing.assert_array_equal(dataset[...], np.stack(images))
        chunks = [dataset.id.read_direct_chunk((i, 0, 0, 0))[1] for i in range(len(images))]
    # The third batch (a clean first frame) goes through HDF5's filter, noisy frame and all.
    for i in (4, 5, 6, 7):
        assert chunks[i] == huffman_only_chunk(images[i])
    for i in (0, 1, 2, 3, 8, 9):  # deflated by HDF5's zlib, which need not be Python's, so compared by what they hold
        assert chunks[i] != huffman_only_chunk(images[i]) and zlib.decompress(chunks[i][:-4]) == images[i].tobytes()
    assert len(chunks[0]) < len(huffman_only_chunk(images[0])) / 1.5


def test_a_corrupt_huffman_only_chunk_fails_its_checksum_on_read(tmp_path):
    folder = tmp_path / "rec"
    with RecordingWriter(folder, CAMERAS, ATTRS, seeds=[0]) as writer:
        for record in _frames([_noisy_image(i) for i in range(5)]):
            writer.add_frame(record)
        writer.end_episode({"track": "t", "track_seed": None})
    verify_recording(folder)
    shard = folder / shard_name(0)
    with h5py.File(shard, "r+") as f:
        dataset = f["images/center"]
        _, chunk = dataset.id.read_direct_chunk((2, 0, 0, 0))
        assert chunk == huffman_only_chunk(_noisy_image(2))
        damaged = bytearray(chunk)
        damaged[len(damaged) // 2] ^= 0x10
        dataset.id.write_direct_chunk((2, 0, 0, 0), bytes(damaged))
    with h5py.File(shard, "r") as f, pytest.raises(OSError):
        f["images/center"][2]
