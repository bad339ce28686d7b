"""Thermometer input and binary 3x3 convolution on packed bits (docs/architecture.md §2.3-2.4).

Bits are 0/1 ``uint8`` arrays where 1 stands for +1 and 0 for -1. A convolution packs, for every
output position, the 9 taps x C input channels of its window into 64-bit words (tap =
``ky * 3 + kx``; bit order of :mod:`fracbnn_golden.bitops`) and computes
``sum over in-image taps of (C - 2 * popcount(a XOR w))`` with XOR and ``np.bitwise_count``.
Taps that fall outside the image (zero padding) contribute 0.
"""

import numpy as np

from .bitops import pack_bits

__all__ = [
    "thermometer_counts", "thermometer_bits", "thermometer_tables", "thermometer_conv",
    "BinaryConv3x3", "binary_conv2d", "output_size", "KERNEL", "TAPS", "THERMOMETER_BITS",
]

THERMOMETER_BITS = 32
KERNEL = 3
TAPS = KERNEL * KERNEL          # taps of a 3x3 window, tap = ky * 3 + kx
# Output elements per chunk of images: keeps the working set in cache.
_CHUNK_ELEMENTS = 1 << 18


def thermometer_counts(pixels):
    """``round_half_even(pixel / 8)`` for uint8 pixels: the thermometer count, 0..32."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise TypeError(f"pixels must be uint8, not {pixels.dtype}")
    quotient, remainder = np.divmod(pixels.astype(np.int32), 8)
    round_up = (remainder > 4) | ((remainder == 4) & (quotient % 2 == 1))
    return (quotient + round_up).astype(np.uint8)


def thermometer_bits(pixels):
    """uint8 pixels ``[N, 3, H, W]`` -> thermometer bits ``[N, 96, H, W]``.

    Channel ``c * 32 + k`` is 1 iff ``k < thermometer_counts(pixel of colour c)``.
    """
    counts = thermometer_counts(pixels)
    if counts.ndim != 4:
        raise ValueError(f"pixels must have shape [N, C, H, W], not {list(counts.shape)}")
    n, c, h, w = counts.shape
    k = np.arange(THERMOMETER_BITS, dtype=np.uint8).reshape(1, 1, -1, 1, 1)
    bits = (k < counts[:, :, None]).astype(np.uint8)
    return bits.reshape(n, c * THERMOMETER_BITS, h, w)


def thermometer_tables(weight):
    """Prefix-sum tables of a binary conv on thermometer input: ``[O, colours, 9 taps, 33]``.

    ``weight``: 0/1 ``[O, colours * 32, 3, 3]`` with channel ``c * 32 + k``. Because a
    thermometer code of count ``n`` is ``n`` ones (+1) followed by zeros (-1), the dot product of
    one colour's 32 bits with the ±1 weights ``w_k`` of one tap is
    ``sum_{k<n} w_k - sum_{k>=n} w_k = 2 * P(n) - S`` with the prefix sum ``P(n) = sum_{k<n} w_k``
    and ``S = P(32)``: a 33-entry table replaces 32 XNOR-popcount lanes.
    """
    weight = np.asarray(weight)
    o, channels = weight.shape[:2]
    if channels % THERMOMETER_BITS or weight.shape[2:] != (KERNEL, KERNEL):
        raise ValueError(f"weight must have shape [O, colours * 32, 3, 3], "
                         f"not {list(weight.shape)}")
    signs = 2 * weight.reshape(o, -1, THERMOMETER_BITS, TAPS).astype(np.int32) - 1
    prefix = np.concatenate([np.zeros_like(signs[:, :, :1]), np.cumsum(signs, axis=2)], axis=2)
    tables = 2 * prefix - prefix[:, :, -1:]                       # [o, colours, 33, taps]
    return tables.transpose(0, 1, 3, 2).copy()


def thermometer_conv(counts, tables):
    """conv1 from thermometer counts ``[N, colours, H, W]`` (0..32) with prefix-sum tables.

    Equal to ``binary_conv2d`` of the thermometer bits (zero padding 1, stride 1): the sum over
    in-image taps and colours of ``tables[o, colour, tap, count]``.
    """
    counts = np.asarray(counts)
    n, colours, h, w = counts.shape
    o = tables.shape[0]
    if tables.shape[1:] != (colours, TAPS, THERMOMETER_BITS + 1):
        raise ValueError(f"tables of shape {list(tables.shape)} do not fit {colours} colours")
    if counts.size and counts.max() > THERMOMETER_BITS:
        raise ValueError(f"thermometer counts must be 0..{THERMOMETER_BITS}")
    # Padding taps index an extra table entry that holds 0.
    padding = THERMOMETER_BITS + 1
    zeros = np.zeros((o, colours, TAPS, 1), tables.dtype)
    extended = np.concatenate([tables, zeros], axis=-1)
    padded = np.full((n, colours, h + 2, w + 2), padding, dtype=np.intp)
    padded[:, :, 1:-1, 1:-1] = counts
    out = np.zeros((o, n, h, w), dtype=np.int32)
    for tap in range(TAPS):
        ky, kx = divmod(tap, KERNEL)
        for colour in range(colours):
            out += extended[:, colour, tap][:, padded[:, colour, ky:ky + h, kx:kx + w]]
    return out.transpose(1, 0, 2, 3)


def output_size(size, stride):
    """Output rows/cols of a 3x3 convolution with padding 1."""
    return (size - 1) // stride + 1


def _tap_valid(size, stride):
    """[out, 3] bool: whether kernel offset k (0..2) of output index i lies inside the image."""
    pos = np.arange(output_size(size, stride))[:, None] * stride + np.arange(KERNEL)[None, :] - 1
    return (pos >= 0) & (pos < size)


def _bytes_to_words(data):
    """View the last axis of a uint8 array as little-endian uint64 words (zero-extended)."""
    n_bytes = data.shape[-1]
    padded = np.zeros(data.shape[:-1] + (-(-n_bytes // 8) * 8,), dtype=np.uint8)
    padded[..., :n_bytes] = data
    return padded.view("<u8").astype(np.uint64, copy=False)


class BinaryConv3x3:
    """A binary 3x3 convolution with zero padding 1 and its weights packed once.

    ``weight``: 0/1 ``[O, C, 3, 3]``. Calling it with 0/1 activations ``[N, C, H, W]`` and a
    stride (1 or 2) returns the int32 sums ``[N, O, Ho, Wo]``, ``Ho = (H - 1) // stride + 1``;
    stride 2 keeps the positions ``(2i, 2j)`` and computes only those.

    The bits of a pixel's channels are packed into bytes, a window's 9 taps are concatenated
    (bit ``tap * 8 * ceil(C / 8) + channel``) and viewed as 64-bit words. Padding taps hold 0
    bits, so the full 9-tap sum counts ``C - 2 * popcount(w_tap)`` for each of them; that term
    depends only on the output position and channel and is subtracted afterwards.
    """

    def __init__(self, weight):
        weight = np.asarray(weight)
        if weight.ndim != 4 or weight.shape[2:] != (KERNEL, KERNEL):
            raise ValueError(f"weight must have shape [O, C, 3, 3], not {list(weight.shape)}")
        self.out_channels, self.in_channels = weight.shape[:2]
        taps = KERNEL * KERNEL
        w_taps = pack_bits(weight.reshape(self.out_channels, self.in_channels, taps), axis=1,
                           word_bits=8).transpose(0, 2, 1)                  # [o, taps, bytes]
        # Words first so the hot loop reads one weight word per output channel.
        self._w_words = _bytes_to_words(w_taps.reshape(self.out_channels, -1)).T[:, :, None].copy()
        self._tap_sum = self.in_channels - 2 * np.bitwise_count(w_taps).sum(-1, dtype=np.int32)
        self._corrections = {}

    def _correction(self, h, w, stride):
        """[O, Ho * Wo]: what the full 9-tap sum adds for padding taps, to subtract."""
        key = (h, w, stride)
        if key not in self._corrections:
            rows, cols = _tap_valid(h, stride), _tap_valid(w, stride)
            valid = rows[:, None, :, None] & cols[None, :, None, :]
            invalid = (~valid).reshape(-1, KERNEL * KERNEL).astype(np.int32)
            self._corrections[key] = self._tap_sum @ invalid.T
        return self._corrections[key]

    def __call__(self, act, stride=1):
        act = np.asarray(act)
        if act.ndim != 4 or act.shape[1] != self.in_channels:
            raise ValueError(f"activations must have shape [N, {self.in_channels}, H, W], "
                             f"not {list(act.shape)}")
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, not {stride!r}")
        n, c, h, w = act.shape
        o, taps = self.out_channels, KERNEL * KERNEL
        ho, wo = output_size(h, stride), output_size(w, stride)
        correction = self._correction(h, w, stride)
        full = np.int32(taps * c)

        pixels = pack_bits(act, axis=1, word_bits=8).transpose(0, 2, 3, 1)  # [n, h, w, bytes]
        # Move each pixel's bytes as one or a few wide units: cheaper than byte-wise copies.
        unit = np.dtype(f"<u{np.gcd(pixels.shape[-1], 8)}")
        padded = np.zeros((n, h + 2, w + 2, pixels.shape[-1]), dtype=np.uint8)
        padded[:, 1:-1, 1:-1] = pixels
        padded = padded.view(unit)
        # Narrow counters halve the memory traffic of the hot loop.
        count_dtype = np.uint16 if taps * 8 * pixels.shape[-1] < (1 << 16) else np.uint32
        out = np.empty((n, o, ho, wo), dtype=np.int32)
        chunk = max(1, _CHUNK_ELEMENTS // (ho * wo * o))
        for start in range(0, n, chunk):
            part = padded[start:start + chunk]
            windows = np.empty((len(part), ho, wo, taps, part.shape[-1]), dtype=unit)
            for tap in range(taps):
                ky, kx = divmod(tap, KERNEL)
                rows = slice(ky, ky + stride * ho, stride)
                cols = slice(kx, kx + stride * wo, stride)
                windows[:, :, :, tap] = part[:, rows, cols]
            windows = windows.reshape(len(part), ho * wo, -1).view(np.uint8)
            # Words first and positions last: each XOR streams over positions with one weight word.
            a_words = np.ascontiguousarray(_bytes_to_words(windows).transpose(2, 0, 1))[:, :, None]
            mismatches = np.zeros((len(part), o, ho * wo), dtype=count_dtype)
            for a_word, w_word in zip(a_words, self._w_words):
                mismatches += np.bitwise_count(np.bitwise_xor(a_word, w_word))
            acc = full - 2 * mismatches.astype(np.int32) - correction
            out[start:start + chunk] = acc.reshape(len(part), o, ho, wo)
        return out


def binary_conv2d(act, weight, stride=1):
    """Binary 3x3 convolution of 0/1 ``act`` ``[N, C, H, W]`` with 0/1 ``weight`` ``[O, C, 3, 3]``.

    Zero padding 1, stride 1 or 2; see :class:`BinaryConv3x3`.
    """
    act, weight = np.asarray(act), np.asarray(weight)
    if act.ndim == 4 and weight.ndim == 4 and act.shape[1] != weight.shape[1]:
        raise ValueError(f"act has {act.shape[1]} channels but weight expects {weight.shape[1]}")
    return BinaryConv3x3(weight)(act, stride)
