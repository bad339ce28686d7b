# amaranth: UnusedElaboratable=no
"""The XNOR-popcount array under cocotb (Verilator, and Icarus when installed), and its
parameter checks."""

import shutil

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from rtl.xnor_popcount import XnorPopcountArray, count_mask
from sim.regression import REGRESSION, xnor_popcount_case


@pytest.mark.parametrize("case", REGRESSION, ids=lambda case: case.name)
def test_array_verilator(case):
    result = case.run(simulator="verilator")
    assert result.passed
    assert sorted(test.name for test in result.tests) == sorted(case.test_names())
    assert len(result.tests) >= 5


@pytest.mark.skipif(shutil.which("iverilog") is None,
                    reason="Icarus Verilog (iverilog) is not on PATH: apt-get install iverilog")
def test_array_icarus():
    result = xnor_popcount_case(pe=2, simd=16, max_beats=18).run(simulator="icarus")
    assert result.passed


@pytest.mark.parametrize("kwargs, error, words", [
    ({"pe": 0, "simd": 8, "max_beats": 9}, ValueError, "pe"),
    ({"pe": 1.5, "simd": 8, "max_beats": 9}, TypeError, "pe"),
    ({"pe": True, "simd": 8, "max_beats": 9}, TypeError, "pe"),
    ({"pe": 2, "simd": 0, "max_beats": 9}, ValueError, "simd"),
    ({"pe": 2, "simd": "8", "max_beats": 9}, TypeError, "simd"),
    ({"pe": 2, "simd": 8, "max_beats": 0}, ValueError, "max_beats"),
    ({"pe": 2, "simd": 8, "max_beats": 9, "acc_width": 4}, ValueError, "acc_width"),
    ({"pe": 2, "simd": 8, "max_beats": 9, "groups": 3}, ValueError, "groups"),
    ({"pe": 2, "simd": 8, "max_beats": 9, "popcount_stages": -1}, ValueError, "stages"),
])
def test_parameters_are_checked(kwargs, error, words):
    with pytest.raises(error, match=words):
        XnorPopcountArray(**kwargs)


def test_default_accumulator_holds_the_extremes():
    array = XnorPopcountArray(pe=1, simd=64, max_beats=9)
    # 9 * 64 = 576 needs 11 bits signed (-1024..1023); 512 would fit in 10.
    assert array.acc_width == 11
    assert XnorPopcountArray(pe=1, simd=8, max_beats=1).acc_width == 5


@pytest.mark.parametrize("width, bits", [(3, 7), (6, 64), (7, 100), (10, 576), (12, 700)])
def test_count_mask_is_a_comparison_per_bit(width, bits):
    # The mask decoder in front of the array's input register, one or two LUT levels: bit n
    # is count > n, for every count of the width (a sample of them for 12 bits).
    m = Module()
    count = Signal(width)
    mask = Signal(bits)
    m.d.comb += mask.eq(count_mask(m, count, bits, None, "mask"))
    values = range(1 << width) if width <= 10 else range(0, 1 << width, 37)

    async def bench(ctx):
        for value in values:
            ctx.set(count, value)
            expected = sum(1 << n for n in range(bits) if value > n)
            assert ctx.get(mask) == expected, f"count {value}"

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
