"""Fixed-point arithmetic of the official FracBNN accelerator (docs/architecture.md §2).

Values are carried as integer *codes* together with a number of fraction bits:
``value = code / 2**frac``. The helpers keep the integer dtype they are given (Python ints and
non-integer inputs become ``int64``); callers choose a dtype wide enough for their expression.
The formats of the accelerator:

* FM (feature maps, ``ap_fixed<16,9,AP_RND,AP_SAT>``): 16-bit signed code, 7 fraction bits.
* WT (parameters, ``ap_fixed<12,4,AP_RND,AP_SAT>``): 12-bit signed code, 8 fraction bits.
* POOL (global-pool accumulator, ``ap_fixed<32,10>``): 32-bit signed code, 22 fraction bits.

Every assignment to a narrower format rounds half up (``floor(v + 1/2)`` at the target
precision) and then saturates; sums and products are exact until that assignment.
"""

import numpy as np

__all__ = [
    "FM_BITS", "FM_FRAC", "FM_MIN", "FM_MAX", "WT_BITS", "WT_FRAC", "WT_MIN", "WT_MAX",
    "POOL_BITS", "POOL_FRAC",
    "round_shift", "saturate", "trunc_div", "requantize", "to_fm",
]

FM_BITS, FM_FRAC = 16, 7
FM_MIN, FM_MAX = -(1 << (FM_BITS - 1)), (1 << (FM_BITS - 1)) - 1
WT_BITS, WT_FRAC = 12, 8
WT_MIN, WT_MAX = -(1 << (WT_BITS - 1)), (1 << (WT_BITS - 1)) - 1
POOL_BITS, POOL_FRAC = 32, 22


def _as_code(code):
    code = np.asarray(code)
    return code if np.issubdtype(code.dtype, np.signedinteger) else code.astype(np.int64)


def round_shift(code, shift):
    """Drop ``shift`` fraction bits rounding half up: ``floor(code / 2**shift + 1/2)``.

    A negative ``shift`` adds fraction bits (exact).
    """
    code = _as_code(code)
    if shift <= 0:
        return code << -shift
    return (code + (1 << (shift - 1))) >> shift


def saturate(code, bits):
    """Clamp to the range of a ``bits``-bit two's complement code."""
    code = _as_code(code)
    lo, hi = code.dtype.type(-(1 << (bits - 1))), code.dtype.type((1 << (bits - 1)) - 1)
    # maximum/minimum with same-dtype scalars: much faster than np.clip on large arrays.
    result = np.maximum(code, lo)
    return np.minimum(result, hi, out=result if code.ndim else None)


def trunc_div(code, divisor):
    """Integer division truncating toward zero (C semantics), for a positive ``divisor``."""
    code = _as_code(code)
    if divisor <= 0:
        raise ValueError(f"divisor must be positive, not {divisor}")
    quotient = np.abs(code) // divisor
    return np.where(code < 0, -quotient, quotient)


def requantize(code, frac, to_frac, to_bits):
    """Assign a code with ``frac`` fraction bits to a (``to_bits``, ``to_frac``) format."""
    return saturate(round_shift(code, frac - to_frac), to_bits)


def to_fm(code, frac):
    """Assign a code with ``frac`` fraction bits to the FM format (round half up, saturate)."""
    return requantize(code, frac, FM_FRAC, FM_BITS)
