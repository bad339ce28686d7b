"""Bit packing and XNOR-popcount dot products.

Bit order (used everywhere in the project, golden model and RTL alike): element ``i`` of a
bit vector goes to word ``i // word_bits``, bit ``i % word_bits`` (least significant bit
first). A bit value of 1 stands for +1, 0 for -1.
"""

import numpy as np

__all__ = ["pack_bits", "unpack_bits", "valid_mask", "xnor_dot"]

_WORD_DTYPES = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}


def _word_dtype(word_bits):
    try:
        return _WORD_DTYPES[word_bits]
    except KeyError:
        raise ValueError(f"word_bits must be one of 8, 16, 32, 64, not {word_bits!r}") from None


def pack_bits(bits, axis=-1, word_bits=64):
    """Pack 0/1 values along ``axis`` into unsigned words, LSB first.

    The packed axis becomes ``ceil(n / word_bits)`` words long; missing high bits of the last
    word are 0. Any non-zero input counts as 1.
    """
    dtype = _word_dtype(word_bits)
    bits = np.asarray(bits)
    axis = axis % bits.ndim
    n = bits.shape[axis]
    n_words = -(-n // word_bits)
    n_bytes = n_words * word_bits // 8
    if n != n_bytes * 8:
        pad = list(bits.shape)
        pad[axis] = n_bytes * 8 - n
        bits = np.concatenate([bits, np.zeros(pad, bits.dtype)], axis=axis)
    # Split the axis into (byte, bit) in place and shift-add the bits: several times faster
    # than np.packbits on a transposed array.
    groups = (bits.reshape(bits.shape[:axis] + (n_bytes, 8) + bits.shape[axis + 1:]) != 0)
    trailing = (1,) * (bits.ndim - axis - 1)
    weights = (np.uint8(1) << np.arange(8, dtype=np.uint8)).reshape((8,) + trailing)
    as_bytes = (groups.astype(np.uint8) * weights).sum(axis + 1, dtype=np.uint8)
    if word_bits == 8:
        return as_bytes
    # Little-endian bytes viewed as words keep element i at bit i.
    as_bytes = np.ascontiguousarray(np.moveaxis(as_bytes, axis, -1))
    words = as_bytes.view(np.dtype(dtype).newbyteorder("<")).astype(dtype, copy=False)
    return np.moveaxis(words, -1, axis)


def unpack_bits(words, count, axis=-1):
    """Inverse of :func:`pack_bits`: ``count`` 0/1 values (uint8) along ``axis``."""
    words = np.asarray(words)
    if words.dtype not in [np.dtype(d) for d in _WORD_DTYPES.values()]:
        raise TypeError(f"packed words must be an unsigned integer array, not {words.dtype}")
    words = np.moveaxis(words, axis, -1)
    word_bits = words.dtype.itemsize * 8
    if count > words.shape[-1] * word_bits:
        raise ValueError(f"{count} bits requested from {words.shape[-1]} words of {word_bits} bits")
    as_bytes = np.ascontiguousarray(words.astype(words.dtype.newbyteorder("<"))).view(np.uint8)
    bits = np.unpackbits(as_bytes, axis=-1, count=count, bitorder="little")
    return np.moveaxis(bits, -1, axis)


def valid_mask(count, word_bits=64):
    """A word with the low ``count`` bits set (``count`` may be an array, 0..word_bits)."""
    count = np.asarray(count, dtype=np.uint64)
    if np.any(count > word_bits):
        raise ValueError(f"valid bit count above the word width {word_bits}")
    ones = np.uint64((1 << word_bits) - 1)
    # A shift by 64 is undefined, so build the mask from the top instead.
    mask = np.where(count == 0, np.uint64(0),
                    ones >> (np.uint64(word_bits) - np.maximum(count, np.uint64(1))))
    return mask.astype(_word_dtype(word_bits))


def xnor_dot(a, w, count):
    """Signed dot product of two ±1 vectors held in the low ``count`` bits of packed words.

    ``count - 2 * popcount((a XOR w) & mask)``: matching bits add +1, differing bits -1, and bits
    at or above ``count`` are ignored, so a zero-padded tap (``count == 0``) contributes 0.
    ``a`` and ``w`` broadcast against each other and against ``count``.
    """
    a = np.asarray(a)
    w = np.asarray(w)
    word_bits = np.result_type(a, w).itemsize * 8
    diff = np.bitwise_and(np.bitwise_xor(a, w), valid_mask(count, word_bits))
    return np.asarray(count, dtype=np.int64) - 2 * np.bitwise_count(diff).astype(np.int64)
