"""How an image chunk is deflated: zlib level 1, or Huffman coding alone when the frame is noise.

Sensor noise leaves LZ77 (the "find an earlier copy" half of deflate) almost
nothing to match, yet zlib level 1 still spends most of its time looking.
On a noisy frame, deflate with Huffman coding only (`Z_HUFFMAN_ONLY`) is
about twice as fast for a few per cent more bytes; on a clean frame it
doubles the size. So the writer probes the first frame of each episode
both ways, camera by camera (`choose_image_codec`), and when Huffman-only
costs at most `HUFFMAN_ONLY_MAX_GROWTH` more bytes it deflates the camera's
frames of that episode that way. An episode has one look, so one level of
sensor noise.

Either way a chunk is a zlib stream: the gzip filter HDF5 records on the
dataset inflates both (a reader needs no plugin and cannot tell them
apart). HDF5's filter has no strategy setting, so Huffman-only chunks are
encoded here, with the fletcher32 trailer HDF5's filter would append
(`hdf5_fletcher32`, tested against HDF5), and written with
`write_direct_chunk`. zlib level 1 batches go through HDF5's own filters.

Both are stock zlib, whose output is a function of its input alone, so the
same frames in the same episodes give the same file bytes in any process
and with any batch size (given the same zlib builds: Python's writes the
Huffman-only chunks, HDF5's the level-1 ones). ISA-L, a faster deflate
tried before, did not: see docs/data-format.md, Storage.
"""

from __future__ import annotations

import zlib

import numpy as np

IMAGE_DEFLATE_LEVEL = 1
"""zlib level of image chunks: the fastest; higher levels save a few per cent of bytes for several times the time."""
HUFFMAN_ONLY_MAX_GROWTH = 0.10
"""Largest share of extra bytes that Huffman-only deflate may cost a probed frame and still be chosen."""

BLOCK_WORDS = 1 << 16
"""Words summed per numpy call: small enough that position x word sums stay exact in int64."""
_POSITIONS = np.arange(BLOCK_WORDS, dtype=np.int64)


def hdf5_fletcher32(data: bytes | memoryview) -> int:
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


def deflate_huffman_only(image: np.ndarray) -> bytes:
    """A zlib stream of `image`'s bytes (C order), Huffman-coded without LZ77 matches."""
    encoder = zlib.compressobj(IMAGE_DEFLATE_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS, zlib.DEF_MEM_LEVEL, zlib.Z_HUFFMAN_ONLY)
    data = memoryview(np.ascontiguousarray(image)).cast("B")
    return encoder.compress(data) + encoder.flush()


def huffman_only_chunk(image: np.ndarray) -> bytes:
    """The stored bytes of one image chunk: `deflate_huffman_only(image)`, then HDF5's fletcher32 of it."""
    stream = deflate_huffman_only(image)
    return stream + hdf5_fletcher32(stream).to_bytes(4, "little")


def choose_image_codec(image: np.ndarray) -> str:
    """"huffman-only" if it deflates `image` to at most `HUFFMAN_ONLY_MAX_GROWTH` more bytes than zlib level 1, else "zlib"."""
    data = memoryview(np.ascontiguousarray(image)).cast("B")
    standard = len(zlib.compress(data, IMAGE_DEFLATE_LEVEL))
    huffman = len(deflate_huffman_only(image))
    return "huffman-only" if huffman <= (1 + HUFFMAN_ONLY_MAX_GROWTH) * standard else "zlib"


__all__ = [
    "HUFFMAN_ONLY_MAX_GROWTH",
    "IMAGE_DEFLATE_LEVEL",
    "choose_image_codec",
    "deflate_huffman_only",
    "hdf5_fletcher32",
    "huffman_only_chunk",
]
