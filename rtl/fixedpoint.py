"""Fixed-point steps of the FracBNN datapath as Amaranth expressions (docs/architecture.md §2).

The same operations as :mod:`fracbnn_golden.fixedpoint`, on signed values: each returns an
expression whose shape holds the result exactly.
"""

from amaranth.hdl import Const, Mux, Shape, signed

from fracbnn_golden.fixedpoint import FM_BITS, FM_FRAC
from fracbnn_golden.model import PG_SUM_MAX, STEM_SUM_MAX

__all__ = ["FM_SHAPE", "PG_SUM_SHAPE", "STEM_SUM_SHAPE", "round_shift", "round_up", "rounded_to_fm",
           "saturate", "sum_shape", "trunc_div_pow2", "to_fm"]


def sum_shape(bound):
    """The signed shape of integer sums in ``-bound .. bound``."""
    return Shape.cast(range(-bound, bound + 1))


FM_SHAPE = signed(FM_BITS)
# Conv sums: of the PG convs (|sum| <= 9 taps x 64 channels) and of the thermometer conv.
PG_SUM_SHAPE = sum_shape(PG_SUM_MAX)
STEM_SUM_SHAPE = sum_shape(STEM_SUM_MAX)


def round_shift(value, shift):
    """Drop ``shift`` fraction bits rounding half up: ``floor(value / 2**shift + 1/2)``."""
    if shift <= 0:
        return value << -shift
    return (value + (1 << (shift - 1))) >> shift


def saturate(value, bits):
    """Clamp a signed value to ``bits``-bit two's complement; the result has shape signed(bits)."""
    lo, hi = Const(-(1 << (bits - 1)), signed(bits)), Const((1 << (bits - 1)) - 1, signed(bits))
    return Mux(value > hi, hi, Mux(value < lo, lo, value))[:bits].as_signed()


def trunc_div_pow2(value, shift):
    """Signed division by ``2**shift`` truncating toward zero."""
    bias = Mux(value < 0, (1 << shift) - 1, 0)
    return (value + bias) >> shift


def to_fm(value, frac):
    """Assign a value with ``frac`` fraction bits to an FM code: round half up, saturate."""
    return saturate(round_shift(value, frac - FM_FRAC), FM_BITS)


def round_up(value, frac):
    """The first half of :func:`to_fm`, for a pipeline register between the halves: ``value``
    (``frac`` fraction bits) plus half an FM unit, the addend a DSP48E2's post-adder takes."""
    shift = frac - FM_FRAC
    return value + (1 << (shift - 1)) if shift > 0 else value


def rounded_to_fm(value, frac):
    """The second half of :func:`to_fm`: a :func:`round_up` value to an FM code (truncate the
    extra fraction bits, saturate)."""
    shift = frac - FM_FRAC
    return saturate(value >> shift if shift > 0 else value << -shift, FM_BITS)

