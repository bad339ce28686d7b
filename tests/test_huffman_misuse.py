"""Huffman API misuse and impossible blobs get a TypeError/ValueError naming the argument (or a
CompressedFormatError), fast, never an error from inside NumPy."""

import struct
import time
import zlib

import numpy as np
import pytest

from fracbnn_golden.huffman import (
    CanonicalCode,
    CompressedFormatError,
    CompressedModel,
    compress_kernels,
    compress_model,
    decompress_kernels,
)
from fracbnn_golden.kernels import symbols_to_kernels


def _reseal(blob):
    """Recompute the metadata CRC (layout: huffman module docstring)."""
    payload_bits = struct.unpack_from("<I", blob, 9)[0]
    metadata_end = len(blob) - (payload_bits + 7) // 8 - 4
    blob = bytearray(blob)
    struct.pack_into("<I", blob, metadata_end, zlib.crc32(bytes(blob[:metadata_end])))
    return bytes(blob)


def test_more_than_64_dimensions_is_a_format_error():
    blob = compress_kernels(symbols_to_kernels(np.arange(4)))
    record = struct.pack("<B3I", 3, 4, 3, 3)
    assert blob.count(record) == 1
    deep = _reseal(blob.replace(record, struct.pack("<B65I", 65, *(1,) * 62, 4, 3, 3)))
    with pytest.raises(CompressedFormatError, match="65 dimensions, at most 64"):
        CompressedModel.from_bytes(deep).decode()
    # 64 are fine.
    ok = _reseal(blob.replace(record, struct.pack("<B64I", 64, *(1,) * 61, 4, 3, 3)))
    assert decompress_kernels(ok).shape == (1,) * 61 + (4, 3, 3)


@pytest.fixture(scope="module")
def code_and_bits():
    code = CanonicalCode.from_frequencies(np.array([5, 3, 2, 1]))
    bits = code.encode([0, 1, 2, 3, 0, 0, 1])
    assert len(bits) == 13
    return code, bits


@pytest.mark.parametrize("count, error, message", [
    (10**7, CompressedFormatError, r"count = 10000000: .* cannot fill a stream of 13 bits"),
    (10**13, CompressedFormatError, r"count = 10000000000000: "),
    (3, CompressedFormatError, r"count = 3: 3 symbols of 1\.\.3 bits cannot fill"),
    (-1, ValueError, r"count must be at least 0, not -1"),
    (2.5, TypeError, r"count must be an integer, not 2\.5 \(float\)"),
    (True, TypeError, r"count must be an integer, not True"),
    ("7", TypeError, r"count must be an integer, not '7'"),
])
def test_impossible_counts_are_refused_up_front(code_and_bits, count, error, message):
    code, bits = code_and_bits
    started = time.monotonic()
    with pytest.raises(error, match=message):
        code.decode(bits, count)
    assert time.monotonic() - started < 1


def test_good_counts_still_decode(code_and_bits):
    code, bits = code_and_bits
    assert code.decode(bits, np.int64(7)).tolist() == [0, 1, 2, 3, 0, 0, 1]
    assert code.decode(np.zeros(0, np.uint8), 0).tolist() == []
    with pytest.raises(CompressedFormatError, match="invalid code at bit 13"):
        code.decode(bits, 8)                   # possible by length, wrong by content
    with pytest.raises(CompressedFormatError, match="6 symbols end at bit 11"):
        code.decode(bits, 6)
    with pytest.raises(TypeError, match="bits must be an array of 0/1 integers"):
        code.decode(bits.astype(float), 7)
    with pytest.raises(ValueError, match=r"bits must be 0 or 1, found 0\.\.2"):
        code.decode(bits * 2, 7)


@pytest.mark.parametrize("call, error, message", [
    (lambda: CanonicalCode.from_frequencies(np.ones(4, np.int64), max_length=2.5), TypeError,
     r"max_length must be an integer, not 2\.5"),
    (lambda: CanonicalCode.from_frequencies(np.ones(4, np.int64), max_length=0), ValueError,
     r"max_length must be 1\.\.32, not 0"),
    (lambda: compress_kernels(symbols_to_kernels(np.arange(4)), max_length=2.5), TypeError,
     r"max_length must be an integer, not 2\.5"),
    (lambda: compress_kernels(symbols_to_kernels(np.arange(8)).reshape(4, 2, 3, 3),
                              block_channels=2**32), ValueError,
     r"block_channels = 4294967296: .* 8589934592 kernels, more than the format's 2\*\*32 - 1"),
    (lambda: compress_kernels(symbols_to_kernels(np.arange(4)), block_channels=10**20),
     ValueError, r"block_channels = 100000000000000000000: "),
    (lambda: compress_kernels(symbols_to_kernels(np.arange(4)), block_channels=2.5), TypeError,
     r"block_channels must be an integer, not 2\.5"),
    (lambda: compress_model({"a": symbols_to_kernels(np.arange(4))}, tables=[1.5]), TypeError,
     r"tables\[\] must be an integer, not 1\.5"),
    (lambda: CanonicalCode.from_frequencies(np.ones(4, np.int64)).encode([1.5]), TypeError,
     "symbols must be integers, not float64"),
    (lambda: decompress_kernels(10**12), TypeError, "blob must be bytes-like, not int"),
])
def test_api_misuse_names_the_argument(call, error, message):
    started = time.monotonic()
    with pytest.raises(error, match=message):
        call()
    assert time.monotonic() - started < 2
