"""Xilinx UltraScale+ primitives for the compressor trees of :mod:`rtl.popcount`."""

from amaranth.hdl import Const, Instance

__all__ = ["LutPrimitives"]


class LutPrimitives:
    """A platform mixin (or a platform of its own, for synthesis estimates): the compressor
    trees' cells become Xilinx primitives (see :mod:`rtl.popcount`), so logic synthesis keeps the
    trees as designed.

    Without it Yosys' ``abc9`` re-maps the counters, e.g. it computes the XOR of an
    activation/weight pair once in a LUT2 shared by the two outputs of a first-level counter,
    which costs about 0.3 LUT per input bit more.
    """

    def get_lut(self, inputs, table, output):
        """``LUT1``..``LUT6``: ``output`` is bit ``index`` of ``table``, input ``n`` giving
        bit ``n`` of the index."""
        width = len(inputs)
        ports = {f"i_I{n}": signal for n, signal in enumerate(inputs)}
        return Instance(f"LUT{width}", p_INIT=Const(table, 1 << width), o_O=output, **ports)

    def get_lut6_2(self, inputs, table6, table5, o6, o5):
        """One ``LUT6_2`` with ``I5`` tied high: ``O6`` and ``O5`` are functions (truth tables
        over ``inputs``, at most five) of the same inputs; unused inputs are tied low."""
        width = len(inputs)
        if not 1 <= width <= 5:
            raise ValueError(f"a LUT6_2 with two outputs takes 1 to 5 inputs, not {width}")

        def expand(table):
            # The 32-entry table over I0..I4; inputs beyond ``width`` are tied to 0.
            return sum(((table >> index) & 1) << index for index in range(1 << width))

        ports = {f"i_I{n}": inputs[n] if n < width else Const(0, 1) for n in range(5)}
        init = (expand(table6) << 32) | expand(table5)
        return Instance("LUT6_2", p_INIT=Const(init, 64), i_I5=Const(1, 1), o_O6=o6, o_O5=o5,
                        **ports)

    def get_carry8(self, carry_in, carry_in_top, data, select, sums, carries):
        """One ``CARRY8``; with ``carry_in_top`` (not None) in DUAL_CY4 mode, where positions
        4..7 form a second chain starting from it."""
        dual = carry_in_top is not None
        return Instance("CARRY8", p_CARRY_TYPE="DUAL_CY4" if dual else "SINGLE_CY8",
                        i_CI=carry_in, i_CI_TOP=carry_in_top if dual else Const(0, 1),
                        i_DI=data, i_S=select, o_O=sums, o_CO=carries)
