"""The non-convolution steps of FracBNN, bit-exact (docs/architecture.md §2.5-2.10).

All functions take and return integer codes (formats in :mod:`fracbnn_golden.fixedpoint`);
parameters are WT codes broadcast over the channel axis 1 of ``[N, C, H, W]`` feature maps.
Feature-map arithmetic runs in ``int32``: the widest intermediate is an FM x WT product plus a
shifted bias (29 bits). The pool accumulator uses ``int64``.
"""

import numpy as np

from .fixedpoint import FM_BITS, FM_FRAC, POOL_BITS, POOL_FRAC, WT_FRAC, saturate, to_fm, trunc_div

__all__ = [
    "TWO_THIRDS", "ONE_THIRD", "ONE_AND_HALF", "PRODUCT_FRAC",
    "input_bn", "quantize", "bit_planes", "precision_gate", "gate_threshold", "merge", "shortcut",
    "global_pool", "linear",
]

# Literals of the HLS datapath, as WT codes (value * 256, rounded).
TWO_THIRDS = 171
ONE_THIRD = 85
ONE_AND_HALF = 384
PRODUCT_FRAC = FM_FRAC + WT_FRAC      # fraction bits of an FM x WT product


def _per_channel(param, ndim):
    """Shape a [C] parameter vector to broadcast over axis 1 of an ``ndim``-D tensor."""
    return np.asarray(param, dtype=np.int32).reshape((1, -1) + (1,) * (ndim - 2))


def _fm(code):
    return np.asarray(code, dtype=np.int32)


def input_bn(acc, scale, bias):
    """conv1's BN: ``Q(scale * acc + bias)`` for the integer conv sum ``acc`` (§2.5)."""
    s, t = _per_channel(scale, acc.ndim), _per_channel(bias, acc.ndim)
    return to_fm(s * _fm(acc) + t, WT_FRAC)


def quantize(fm):
    """2-bit activation ``clamp(floor((x + 1) * 1.5 + 1/2), 0, 3)`` of FM codes (§2.6)."""
    fm = _fm(fm)
    one = 1 << FM_FRAC
    half = 1 << (PRODUCT_FRAC - 1)
    return np.clip(((fm + one) * ONE_AND_HALF + half) >> PRODUCT_FRAC, 0, 3).astype(np.uint8)


def bit_planes(q):
    """The MSB and LSB planes of 2-bit activations, as 0/1 uint8 arrays."""
    q = np.asarray(q, dtype=np.uint8)
    return q >> 1, q & 1


def precision_gate(msb, threshold):
    """Where the LSB pass is needed: ``171 * msb > threshold`` (both in units of 1/256, §2.7)."""
    return TWO_THIRDS * _fm(msb) > _per_channel(threshold, np.ndim(msb))


def gate_threshold(threshold):
    """The integer form of the gate: ``171 * msb > threshold`` iff ``msb > gate_threshold``.

    ``msb`` is an integer, so ``171 * msb > threshold`` iff ``msb > threshold / 171`` iff
    ``msb > floor(threshold / 171)``: hardware compares against this constant, no multiplier.
    """
    return np.floor_divide(np.asarray(threshold, dtype=np.int32), TWO_THIRDS)


def merge(msb, lsb, residual, bn, rprelu, bn_out):
    """Merge the MSB/LSB conv sums, BN, RPReLU, residual add and the second BN (§2.8).

    ``msb``, ``lsb``: integer conv sums (``lsb`` already 0 where the gate is off);
    ``residual``: FM codes; ``bn``, ``bn_out``: (weight, bias); ``rprelu``: (shift_x_bias,
    prelu_weight, shift_y_bias). Returns FM codes.
    """
    ndim = np.ndim(msb)
    s0, b0 = (_per_channel(p, ndim) for p in bn)
    bx, alpha, by = (_per_channel(p, ndim) for p in rprelu)
    s1, b1 = (_per_channel(p, ndim) for p in bn_out)
    t0 = saturate(_fm(msb) << FM_FRAC, FM_BITS)
    t1 = saturate(_fm(lsb) << FM_FRAC, FM_BITS)
    t0 = to_fm(t0 * TWO_THIRDS, PRODUCT_FRAC)
    t0 = to_fm((t0 << WT_FRAC) + t1 * ONE_THIRD, PRODUCT_FRAC)
    t0 = to_fm(s0 * t0 + (b0 << FM_FRAC), PRODUCT_FRAC)
    t0 = to_fm((t0 << (WT_FRAC - FM_FRAC)) + bx, WT_FRAC)
    # PReLU: slope alpha below 0, 1 (= 256 / 256, exact) above, so one rounding serves both.
    unit = 1 << WT_FRAC
    t0 = to_fm(t0 * (unit + (t0 < 0) * (alpha - unit)), PRODUCT_FRAC)
    t0 = to_fm((t0 << (WT_FRAC - FM_FRAC)) + by, WT_FRAC)
    summed = saturate(_fm(residual) + t0, FM_BITS)
    return to_fm(s1 * summed + (b1 << FM_FRAC), PRODUCT_FRAC)


def shortcut(fm):
    """Stride-2 shortcut: 2x2 average (saturating adds, truncating /4), channels duplicated (§2.9).

    ``[N, C, H, W]`` -> ``[N, 2C, H/2, W/2]``. The window is added in row-major order,
    saturating after each addition.
    """
    fm = _fm(fm)
    total = fm[:, :, 0::2, 0::2]
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        total = saturate(total + fm[:, :, dy::2, dx::2], FM_BITS)
    pooled = trunc_div(total, 4)
    return np.concatenate([pooled, pooled], axis=1)


def global_pool(fm):
    """8x8 average in the 32-bit, 22-fraction-bit accumulator (§2.10).

    ``[N, C, H, W]`` FM codes -> (pool codes ``[N, C]`` with 22 fraction bits, FM codes ``[N, C]``).
    Positions are summed row-major, saturating after each addition; the sum is divided by the
    number of positions, truncating toward zero.
    """
    fm = np.asarray(fm, dtype=np.int64)
    n, c, h, w = fm.shape
    values = fm.reshape(n, c, h * w) << (POOL_FRAC - FM_FRAC)
    acc = np.zeros((n, c), dtype=np.int64)
    for position in range(values.shape[-1]):
        acc = saturate(acc + values[:, :, position], POOL_BITS)
    pool = trunc_div(acc, values.shape[-1])
    return pool, to_fm(pool, POOL_FRAC)


def linear(x, weight, bias):
    """The classifier in FM arithmetic: ``y = Q(b); y = Q(y + x[c] * w[c])`` for c in order.

    ``x``: FM codes ``[N, C]``; ``weight`` ``[K, C]`` and ``bias`` ``[K]``: WT codes, re-rounded
    to FM (7 fraction bits) first. Returns FM codes ``[N, K]``.
    """
    x = _fm(x)
    w = to_fm(_fm(weight), WT_FRAC)
    y = np.broadcast_to(to_fm(_fm(bias), WT_FRAC), (len(x), len(w)))
    for channel in range(x.shape[1]):
        y = to_fm((y << FM_FRAC) + x[:, channel, None] * w[None, :, channel], 2 * FM_FRAC)
    return y
