"""How an image chunk is stored: a zlib stream (libdeflate level 2, or zlib's Huffman coding alone), then HDF5's fletcher32.

Compressing images is the largest single cost of recording. libdeflate (the
`deflate` package) at level 2 deflates drivesim's clean and lightly noisy
frames 1.4x faster than zlib at level 1 and into 3-10 % fewer bytes. Sensor
noise leaves LZ77 (the "find an earlier copy" half of deflate) almost
nothing to match, yet it still spends most of its time looking; on such
frames Huffman coding alone (zlib's `Z_HUFFMAN_ONLY`) is 1.3x faster than
libdeflate for 8 % more bytes, and on clean frames it doubles the size.
So the writer probes the first frame of each episode both ways,
camera by camera (`choose_image_codec`), and when Huffman-only costs at
most `HUFFMAN_ONLY_MAX_GROWTH` more bytes it deflates the camera's frames
of that episode that way. An episode has one look, so one level of sensor
noise. Figures: docs/data-format.md, Storage.

Either way a chunk is a zlib stream, which the gzip filter HDF5 records on
the dataset inflates: a reader needs no plugin and cannot tell them apart.
HDF5's filter can use neither codec, so chunks are encoded here, with the
fletcher32 trailer HDF5's filter would append (`hdf5_fletcher32`, tested
against HDF5), and written with `write_direct_chunk`.

Both codecs' output is a function of their input alone, so the same frames
in the same episodes give the same file bytes in any process and with any
batch size (given the same libdeflate, which comes inside the `deflate`
wheel, and the same zlib, Python's). ISA-L, a faster deflate tried before,
did not: see docs/data-format.md, Storage.
"""

from __future__ import annotations

import zlib

import deflate
import numpy as np

IMAGE_DEFLATE_LEVEL = 2
"""libdeflate level of image chunks: level 1 is 1.2-1.5x faster for 11-14 % more bytes; level 6 saves 0.5-3 % for 1.15-1.7x the time."""
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


def deflate_image(image: np.ndarray) -> bytes:
    """A zlib stream of `image`'s bytes (C order), deflated by libdeflate at `IMAGE_DEFLATE_LEVEL`."""
    return deflate.zlib_compress(memoryview(np.ascontiguousarray(image)).cast("B"), IMAGE_DEFLATE_LEVEL)


def deflate_huffman_only(image: np.ndarray) -> bytes:
    """A zlib stream of `image`'s bytes (C order), Huffman-coded by zlib without LZ77 matches."""
    encoder = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS, zlib.DEF_MEM_LEVEL, zlib.Z_HUFFMAN_ONLY)
    return encoder.compress(memoryview(np.ascontiguousarray(image)).cast("B")) + encoder.flush()


CODECS = {"libdeflate": deflate_image, "huffman-only": deflate_huffman_only}
"""Image codec name -> its function from a frame to a zlib stream."""


def choose_image_codec(image: np.ndarray) -> tuple[str, bytes]:
    """("huffman-only", its stream) if it deflates `image` to at most `HUFFMAN_ONLY_MAX_GROWTH` more bytes than
    libdeflate, else ("libdeflate", its stream): the probed frame needs no second deflate."""
    huffman, standard = deflate_huffman_only(image), deflate_image(image)
    if len(huffman) <= (1 + HUFFMAN_ONLY_MAX_GROWTH) * len(standard):
        return "huffman-only", huffman
    return "libdeflate", standard


def stored_chunk(stream: bytes) -> bytes:
    """The stored bytes of one image chunk: its zlib stream, then HDF5's fletcher32 of the stream."""
    return stream + hdf5_fletcher32(stream).to_bytes(4, "little")


def image_chunk(image: np.ndarray, codec: str = "libdeflate") -> bytes:
    """The stored bytes of `image` deflated by `codec` (`stored_chunk`)."""
    return stored_chunk(CODECS[codec](image))


__all__ = ["CODECS", "HUFFMAN_ONLY_MAX_GROWTH", "IMAGE_DEFLATE_LEVEL", "choose_image_codec", "deflate_huffman_only", "deflate_image", "hdf5_fletcher32", "image_chunk", "stored_chunk"]
