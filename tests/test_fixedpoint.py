"""Fixed-point helpers against exact rational arithmetic (fractions.Fraction)."""

import math
from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fracbnn_golden.fixedpoint import requantize, round_shift, saturate, to_fm, trunc_div

codes = st.integers(-(2**40), 2**40)


@given(code=codes, shift=st.integers(0, 24))
def test_round_shift_is_floor_of_value_plus_half(code, shift):
    exact = Fraction(code, 2**shift)
    assert round_shift(np.int64(code), shift) == math.floor(exact + Fraction(1, 2))


@given(code=codes, shift=st.integers(-8, 0))
def test_round_shift_left_is_exact(code, shift):
    assert round_shift(np.int64(code), shift) == code * 2**-shift


@given(code=codes, bits=st.integers(2, 40))
def test_saturate_clamps_to_twos_complement_range(code, bits):
    expected = min(max(code, -(2 ** (bits - 1))), 2 ** (bits - 1) - 1)
    assert saturate(np.int64(code), bits) == expected


@given(code=codes, divisor=st.integers(1, 1000))
def test_trunc_div_truncates_toward_zero(code, divisor):
    exact = Fraction(code, divisor)
    assert trunc_div(np.int64(code), divisor) == math.trunc(exact)


@given(code=codes, frac=st.integers(0, 30))
def test_to_fm_rounds_half_up_then_saturates(code, frac):
    value = Fraction(code, 2**frac)
    expected = min(max(math.floor(value * 128 + Fraction(1, 2)), -32768), 32767)
    assert to_fm(np.int64(code), frac) == expected


# Codes up to 2**30 shifted by up to 30 bits stay inside int64, the widest dtype used.
@given(code=st.integers(-(2**30), 2**30), frac=st.integers(0, 30), to_frac=st.integers(0, 30),
       bits=st.integers(4, 40))
def test_requantize_matches_the_rational_definition(code, frac, to_frac, bits):
    value = Fraction(code, 2**frac)
    rounded = math.floor(value * 2**to_frac + Fraction(1, 2))
    expected = min(max(rounded, -(2 ** (bits - 1))), 2 ** (bits - 1) - 1)
    assert requantize(np.int64(code), frac, to_frac, bits) == expected


def test_helpers_keep_int32_and_vectorise():
    codes32 = np.array([-3, -2, -1, 0, 1, 2, 3], dtype=np.int32)
    assert round_shift(codes32, 1).dtype == np.int32
    assert round_shift(codes32, 1).tolist() == [-1, -1, 0, 0, 1, 1, 2]
    assert trunc_div(codes32, 2).tolist() == [-1, -1, 0, 0, 0, 1, 1]
