"""Image chunks: Huffman-only for noisy frames, libdeflate otherwise; HDF5's checksum; plain h5py reads both."""

from __future__ import annotations

import hashlib
import zlib

import h5py
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from record_helpers import ATTRS, make_frame

from drivesim.record import ShardWriter, shard_name
from drivesim.record.chunk import (
    BLOCK_WORDS,
    HUFFMAN_ONLY_MAX_GROWTH,
    choose_image_codec,
    deflate_huffman_only,
    deflate_image,
    hdf5_fletcher32,
    image_chunk,
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
        assert choose_image_codec(clean) == ("libdeflate", deflate_image(clean))
        assert choose_image_codec(noisy) == ("huffman-only", deflate_huffman_only(noisy))
        assert len(deflate_huffman_only(noisy)) <= (1 + HUFFMAN_ONLY_MAX_GROWTH) * len(deflate_image(noisy))
        assert len(deflate_huffman_only(clean)) > (1 + HUFFMAN_ONLY_MAX_GROWTH) * len(deflate_image(clean))


def test_image_chunks_inflate_to_the_c_order_bytes():
    for source in (_clean_image(0), _noisy_image(1), _noisy_image(2)[:, ::-1], _clean_image(3)[::2]):  # views too
        for codec in ("libdeflate", "huffman-only"):
            chunk = image_chunk(source, codec)
            assert zlib.decompress(chunk[:-4]) == np.ascontiguousarray(source).tobytes()
            assert int.from_bytes(chunk[-4:], "little") == hdf5_fletcher32(chunk[:-4])


def _write(path, episodes: list[dict[str, list[np.ndarray]]], batch_frames: int = 4) -> None:
    """A shard of `episodes`, each mapping camera name -> its frames."""
    cameras = {name: SIZE for name in episodes[0]}
    with ShardWriter(path, cameras, ATTRS, batch_frames=batch_frames) as writer:
        i = 0
        for episode, frames in enumerate(episodes):
            for step in range(len(next(iter(frames.values())))):
                record = make_frame(i, episode, step, cameras={})
                record.update({f"images/{name}": images[step] for name, images in frames.items()})
                writer.add_frame(record)
                i += 1
            writer.end_episode({"track": "t", "track_seed": None})


def _chunks(path, camera: str) -> tuple[np.ndarray, list[bytes]]:
    with h5py.File(path, "r") as f:  # HDF5 inflates every chunk and checks its fletcher32 here
        dataset = f[f"images/{camera}"]
        return dataset[...], [dataset.id.read_direct_chunk((i, 0, 0, 0))[1] for i in range(len(dataset))]


def test_each_camera_keeps_one_codec_per_episode_chosen_on_its_first_frame(tmp_path):
    """Batches of 4 straddle the episodes; plain h5py reads both kinds of chunk back exactly."""
    noisy, clean = [_noisy_image(i) for i in range(7)], [_clean_image(i) for i in range(7)]
    center = [noisy[:6], clean[:2] + noisy[2:7]]  # episode 0 noisy (frame 3 clean), episode 1 clean at first
    center[0][3] = clean[3]
    left = [clean[:6], noisy[:7]]
    path = tmp_path / shard_name(0)
    _write(path, [{"center": center[0], "left": left[0]}, {"center": center[1], "left": left[1]}])
    for camera, episodes, codecs in (("center", center, ("huffman-only", "libdeflate")), ("left", left, ("libdeflate", "huffman-only"))):
        images, chunks = _chunks(path, camera)
        np.testing.assert_array_equal(images, np.stack(episodes[0] + episodes[1]))
        expected = [image_chunk(image, codec) for image, codec in zip(images, [codecs[0]] * 6 + [codecs[1]] * 7, strict=True)]
        assert chunks == expected


def test_the_bytes_do_not_depend_on_the_batch_size(tmp_path):
    episodes = [{"center": [_noisy_image(i) for i in range(9)]}, {"center": [_clean_image(i) for i in range(5)]}]
    digests = set()
    for batch_frames in (1, 4, 5, 64):
        path = tmp_path / str(batch_frames) / shard_name(0)
        _write(path, episodes, batch_frames)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1


def test_a_huffman_only_chunk_with_a_wrong_checksum_fails_the_read(tmp_path):
    path = tmp_path / shard_name(0)
    _write(path, [{"center": [_noisy_image(i) for i in range(5)]}])
    with h5py.File(path, "r+") as f:
        dataset = f["images/center"]
        _, chunk = dataset.id.read_direct_chunk((2, 0, 0, 0))
        assert chunk == image_chunk(_noisy_image(2), "huffman-only")
        damaged = bytearray(chunk)
        damaged[-1] ^= 0x01  # the trailer only: the stream still inflates, so only fletcher32 can catch it
        dataset.id.write_direct_chunk((2, 0, 0, 0), bytes(damaged))
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["images/center"][1], _noisy_image(1))
        with pytest.raises(OSError):
            f["images/center"][2]
