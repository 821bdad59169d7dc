"""Image chunks encoded exactly as HDF5's gzip (deflate) and fletcher32 filters store them.

The writer deflates each frame with zlib at `IMAGE_DEFLATE_LEVEL` (what
HDF5's gzip filter runs, byte for byte) and hands the encoded chunk to HDF5
with `write_direct_chunk`, which skips HDF5's own filters; so this module
also computes HDF5's fletcher32 trailer, bit for bit as HDF5 does
(`H5_checksum_fletcher32`; tested against HDF5 itself). Any HDF5 reader
(h5py with no plugins included) opens the shards.

zlib, not a faster deflate: ISA-L's deflate (the `isal` package) compressed
these frames 4-5x faster, but the same frame now and then came out as a
different (equally valid) stream in different processes, so the same run
with a different worker count gave other file bytes
(`scripts/benchmark.py compression` still compares the codecs).
"""

from __future__ import annotations

import zlib

import h5py
import numpy as np

IMAGE_DEFLATE_LEVEL = 1
"""zlib level of image chunks: the fastest; higher levels save a few per cent of bytes for several times the time."""
IMAGE_FILTERS = (h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_FLETCHER32)
"""The filter pipeline, in order, that `encode_image_chunk`'s bytes are the output of."""

BLOCK_WORDS = 1 << 16
"""Words summed per numpy call: small enough that position x word sums stay exact in int64."""
_POSITIONS = np.arange(BLOCK_WORDS, dtype=np.int64)


def hdf5_fletcher32(data: bytes) -> int:
    """HDF5's fletcher32 of `data`, the value its filter appends to a chunk (little-endian).

    HDF5 sums big-endian 16-bit words (an odd last byte is the high byte of
    a last word) with end-around carry: each 16-bit sum is the true sum
    modulo 65535, except that a nonzero multiple of 65535 reads 0xffff.
    """
    data = memoryview(data).cast("B")  # bytes, whatever buffer it came in
    size = len(data)
    words = np.frombuffer(data, ">u2", count=size // 2).astype(np.int64)
    if size % 2:
        words = np.append(words, np.int64(data[-1]) << 8)
    n = len(words)
    # Sum 1 adds the words; sum 2 adds sum 1 after each word, i.e. word i counts n - i times.
    sum1 = sum2 = 0
    for start in range(0, n, BLOCK_WORDS):
        block = words[start : start + BLOCK_WORDS]
        block_sum = int(block.sum())
        sum1 += block_sum
        sum2 += (n - start) * block_sum - int(block @ _POSITIONS[: len(block)])
    return (_fold(sum2) << 16) | _fold(sum1)


def _fold(total: int) -> int:
    return 0 if total == 0 else 1 + (total - 1) % 65535


def encode_image_chunk(image: np.ndarray) -> bytes:
    """The stored bytes of one image chunk: a zlib stream of `image`'s bytes, then HDF5's fletcher32 of it.

    The stream inflates to `image`'s bytes in C order, exactly.
    """
    stream = zlib.compress(memoryview(np.ascontiguousarray(image)).cast("B"), IMAGE_DEFLATE_LEVEL)
    return stream + hdf5_fletcher32(stream).to_bytes(4, "little")


def image_filters(dataset: h5py.Dataset) -> tuple[int, ...]:
    """Filter ids of `dataset`'s pipeline, in order (what its chunks must be encoded with)."""
    plist = dataset.id.get_create_plist()
    return tuple(plist.get_filter(i)[0] for i in range(plist.get_nfilters()))


__all__ = ["IMAGE_DEFLATE_LEVEL", "IMAGE_FILTERS", "encode_image_chunk", "hdf5_fletcher32", "image_filters"]
