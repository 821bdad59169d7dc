"""Image chunks encoded outside HDF5: the checksum is HDF5's own, and plain h5py reads the chunks back."""

from __future__ import annotations

import zlib

import h5py
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from drivesim.record.chunk import BLOCK_WORDS, IMAGE_FILTERS, encode_image_chunk, hdf5_fletcher32, image_filters


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


def test_encoded_chunks_read_back_through_hdf5s_own_filters(tmp_path):
    rng = np.random.default_rng(0)
    images = [
        np.zeros((24, 32, 3), np.uint8),
        np.full((24, 32, 3), 255, np.uint8),
        rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),  # incompressible: the stream is longer than the image
        np.repeat(rng.integers(0, 30, (24, 32, 1), dtype=np.uint8), 3, axis=2),
    ]
    path = tmp_path / "images.h5"
    with h5py.File(path, "w") as f:
        dataset = f.create_dataset(
            "images", shape=(len(images), 24, 32, 3), dtype=np.uint8, chunks=(1, 24, 32, 3), compression="gzip", fletcher32=True
        )
        assert image_filters(dataset) == IMAGE_FILTERS
        for i, image in enumerate(images):
            chunk = encode_image_chunk(image)
            assert zlib.decompress(chunk[:-4]) == image.tobytes()
            dataset.id.write_direct_chunk((i, 0, 0, 0), chunk)
    with h5py.File(path, "r") as f:  # HDF5 inflates each chunk and checks its fletcher32 while reading
        np.testing.assert_array_equal(f["images"][...], np.stack(images))


def test_a_wrong_trailer_fails_the_read(tmp_path):
    image = np.arange(24 * 32 * 3, dtype=np.uint8).reshape(24, 32, 3)
    chunk = bytearray(encode_image_chunk(image))
    chunk[-1] ^= 0x01
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        dataset = f.create_dataset("images", shape=(1, 24, 32, 3), dtype=np.uint8, chunks=(1, 24, 32, 3), compression="gzip", fletcher32=True)
        dataset.id.write_direct_chunk((0, 0, 0, 0), bytes(chunk))
    with h5py.File(path, "r") as f, pytest.raises(OSError):
        f["images"][...]


def test_non_contiguous_images_encode_their_c_order_bytes():
    image = np.arange(24 * 32 * 3, dtype=np.uint8).reshape(24, 32, 3)
    flipped = image[:, ::-1]
    assert zlib.decompress(encode_image_chunk(flipped)[:-4]) == np.ascontiguousarray(flipped).tobytes()


def test_fletcher32_of_any_buffer_is_that_of_its_bytes():
    words = np.arange(1, 6, dtype=np.uint16)
    assert hdf5_fletcher32(memoryview(words)) == hdf5_fletcher32(words.tobytes())
    grid = np.arange(7 * 3, dtype=np.uint8).reshape(7, 3)
    assert hdf5_fletcher32(memoryview(grid)) == hdf5_fletcher32(grid.tobytes())
