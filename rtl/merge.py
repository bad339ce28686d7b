"""Merge of the MSB/LSB sums, BN, RPReLU, residual add and output BN (docs/architecture.md §2.8)."""

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fracbnn_golden.fixedpoint import FM_BITS, FM_FRAC, WT_BITS, WT_FRAC
from fracbnn_golden.layers import ONE_THIRD, PRODUCT_FRAC, TWO_THIRDS

from .fixedpoint import FM_SHAPE, PG_SUM_SHAPE, round_up, rounded_to_fm, saturate, to_fm
from .params import check_positive_int, check_wt_codes
from .pipeline import lockstep_pipeline

__all__ = ["MergeUnit", "MERGE_PARAMS"]

# Per-channel parameters of one PG conv's merge, in table order (WT codes).
MERGE_PARAMS = ("bn_weight", "bn_bias", "shift_x", "prelu", "shift_y", "bn_out_weight",
                "bn_out_bias")
WT_SHAPE = signed(WT_BITS)
# A product's rounding constant, half an FM unit: 1 << (PRODUCT_FRAC - FM_FRAC - 1) is
# 1 << FM_FRAC, one unit of a bias in the product's position (bias << FM_FRAC). So a bias table
# holds ``bias + 1`` (one bit wider) and the multiply-add ``s * t + (bias + 1) << FM_FRAC`` is
# the rounded sum, a two-operand add (the DSP's post-adder) rather than three.
assert PRODUCT_FRAC - FM_FRAC - 1 == FM_FRAC
ROUNDED_BIAS_COLUMNS = ("bn_bias", "bn_out_bias")
ROUNDED_BIAS_SHAPE = signed(WT_BITS + 1)


class MergeUnit(wiring.Component):
    """``lanes`` output channels of ``pixels`` output pixels of a PG conv from their conv sums
    to the block output.

    Per lane, bit-exact with :func:`fracbnn_golden.layers.merge`::

        t0 = sat16(msb) ; t1 = sat16(lsb if gate else 0)       (as FM values)
        t0 = Q(t0 * 171/256) ; t0 = Q(t0 + t1 * 85/256)
        t0 = Q(s0 * t0 + b0) ; t0 = Q(t0 + bx) ; t0 = Q(t0 * (alpha if t0 < 0 else 1))
        t0 = Q(t0 + by) ; out = Q(s1 * sat16(residual + t0) + b1)

    Q rounds half up and saturates to FM. The per-channel parameters are not in the stream: they
    fill read-only memories, and each transfer names its ``row``; every stage reads the
    parameters it needs with the row that travels along, so parameters never ride the pipeline.
    The ``pixels`` pixels of a transfer share the row: each memory is read once per transfer
    and its ``lanes`` columns serve every pixel. Each of the five products (``171``, ``85``,
    ``s0``, ``alpha``, ``s1``) maps to a DSP48E2 per lane (``pixels * lanes`` lanes), with the
    addend and the rounding constant (half an FM unit) of its ``Q`` in the same sum, the DSP's
    post-adder; a pipeline register follows it (the DSP's PREG, for Vivado), and the next stage
    drops the extra fraction bits and saturates.

    Parameters
    ----------
    lanes : int
        Output channels per transfer.
    params : int array ``[rows, lanes, 7]``
        WT codes, columns :data:`MERGE_PARAMS`, e.g. one row per layer and group of ``lanes``
        output channels.
    sum_width : int
        Width of the signed conv sums.
    pixels : int
        Output pixels per transfer, all of the same ``lanes`` channels (one parameter row).

    Members
    -------
    i : In(stream.Signature(StructLayout({"msb", "lsb", "gate", "residual", "row"})))
        The MSB and LSB conv sums (``pixels * lanes`` x ``signed(sum_width)``), the gate bits
        (``pixels * lanes``), the residual FM codes (``pixels * lanes``) and the parameter
        ``row`` (one). Lane ``p * lanes + k`` is channel ``k`` of pixel ``p`` and uses column
        ``k`` of the row.
    o : Out(stream.Signature(StructLayout({"fm": ArrayLayout(FM_SHAPE, pixels * lanes)})))
        The block output, FM codes, in the lanes of the input.

    Protocol
    --------
    Streams with back-pressure, a lock-step pipeline (:func:`rtl.pipeline.lockstep_pipeline`).

    Latency
    -------
    :attr:`latency` = 14 cycles: one per step above, two for each of the five with a product.
    """

    latency = 14

    def __init__(self, lanes, params, sum_width=PG_SUM_SHAPE.width, pixels=1):
        check_positive_int("MergeUnit", "lanes", lanes)
        check_positive_int("MergeUnit", "sum_width", sum_width, minimum=2)
        check_positive_int("MergeUnit", "pixels", pixels)
        params = np.asarray(params)
        if params.ndim != 3 or params.shape[1:] != (lanes, len(MERGE_PARAMS)):
            raise ValueError(f"MergeUnit params must have shape [rows, {lanes}, "
                             f"{len(MERGE_PARAMS)}], not {list(params.shape)}")
        if len(params) == 0:
            raise ValueError("MergeUnit params must have at least one row")
        check_wt_codes("MergeUnit", "params", params)
        self.lanes = lanes
        self.params = params.astype(np.int64)
        self.sum_width = sum_width
        self.pixels = pixels
        sums = data.ArrayLayout(signed(sum_width), pixels * lanes)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "msb": sums,
                "lsb": sums,
                "gate": pixels * lanes,
                "residual": data.ArrayLayout(FM_SHAPE, pixels * lanes),
                "row": range(len(params)),
            }))),
            "o": Out(stream.Signature(data.StructLayout({
                "fm": data.ArrayLayout(FM_SHAPE, pixels * lanes)}))),
        })

    def _table(self, m, name, columns):
        """A read-only memory of the given parameter columns, one row per table row; the
        columns of :data:`ROUNDED_BIAS_COLUMNS` hold the bias plus one (all columns are then
        one bit wider)."""
        rounded = [column in ROUNDED_BIAS_COLUMNS for column in columns]
        shape = ROUNDED_BIAS_SHAPE if any(rounded) else WT_SHAPE
        layout = data.ArrayLayout(data.ArrayLayout(shape, len(columns)), self.lanes)
        indices = [MERGE_PARAMS.index(column) for column in columns]
        init = [[[int(v) + plus for v, plus in zip(lane[indices], rounded)] for lane in row]
                for row in self.params]
        m.submodules[name] = table = memory.Memory(shape=layout, depth=len(self.params), init=init)
        return table.read_port()

    def elaborate(self, platform):
        m = Module()
        lanes = range(self.pixels * self.lanes)
        # One table per stage that needs parameters: the row is on its read port one cycle
        # before the stage computes, so the data arrives with the stage's operands.
        bn = self._table(m, "bn_table", ("bn_weight", "bn_bias"))
        shift_x = self._table(m, "shift_x_table", ("shift_x",))
        prelu = self._table(m, "prelu_table", ("prelu",))
        shift_y = self._table(m, "shift_y_table", ("shift_y",))
        bn_out = self._table(m, "bn_out_table", ("bn_out_weight", "bn_out_bias"))

        def column(port, k):
            """The parameters of lane ``k``: channel ``k % lanes`` of the row read (the pixels
            share the read)."""
            return port.data[k % self.lanes]

        def carry(stage, port=None):
            if port is not None:
                m.d.comb += port.addr.eq(stage["row"])
            return {"row": stage["row"], "residual": stage["residual"]}

        def to_fm_values(payload):
            t0 = [saturate(payload.msb[k] << FM_FRAC, FM_BITS) for k in lanes]
            t1 = [saturate(Mux(payload.gate[k], payload.lsb[k], 0) << FM_FRAC, FM_BITS)
                  for k in lanes]
            residual = [payload.residual[k] for k in lanes]
            return {"t0": t0, "t1": t1, "row": payload.row, "residual": residual}

        # Each step with a product takes two stages: the multiply-add (a DSP48E2) with the
        # rounding constant, registered at the DSP's output, then the shift and saturation.
        def two_thirds(stage):
            t0 = [round_up(stage["t0"][k] * TWO_THIRDS, PRODUCT_FRAC) for k in lanes]
            return {"t0": t0, "t1": stage["t1"], **carry(stage)}

        def two_thirds_fm(stage):
            t0 = [rounded_to_fm(stage["t0"][k], PRODUCT_FRAC) for k in lanes]
            return {"t0": t0, "t1": stage["t1"], **carry(stage)}

        def add_one_third(stage):
            # t0 << WT_FRAC plus the rounding constant (below WT_FRAC) is a concatenation.
            t0 = [Cat(Const(1 << (PRODUCT_FRAC - FM_FRAC - 1), WT_FRAC), stage["t0"][k]).as_signed()
                  + stage["t1"][k] * ONE_THIRD for k in lanes]
            return {"t0": t0, **carry(stage)}

        def add_one_third_fm(stage):
            t0 = [rounded_to_fm(stage["t0"][k], PRODUCT_FRAC) for k in lanes]
            return {"t0": t0, **carry(stage, bn)}

        def batch_norm(stage):
            # The bias column holds bias + 1: the sum is rounded up already.
            t0 = [column(bn, k)[0] * stage["t0"][k] + (column(bn, k)[1] << FM_FRAC)
                  for k in lanes]
            return {"t0": t0, **carry(stage)}

        def batch_norm_fm(stage):
            t0 = [rounded_to_fm(stage["t0"][k], PRODUCT_FRAC) for k in lanes]
            return {"t0": t0, **carry(stage, shift_x)}

        def add_shift_x(stage):
            t0 = [to_fm((stage["t0"][k] << (WT_FRAC - FM_FRAC)) + column(shift_x, k)[0], WT_FRAC)
                  for k in lanes]
            return {"t0": t0, **carry(stage, prelu)}

        # Slope alpha for t0 < 0; slope 1 (256/256, exact) leaves t0 >= 0 as it is, so the DSP
        # always multiplies by alpha and the next stage chooses.
        def prelu_slope(stage):
            product = [round_up(stage["t0"][k] * column(prelu, k)[0], PRODUCT_FRAC)
                       for k in lanes]
            return {"product": product, "t0": stage["t0"], **carry(stage)}

        def prelu_slope_fm(stage):
            t0 = [Mux(stage["t0"][k] < 0, rounded_to_fm(stage["product"][k], PRODUCT_FRAC),
                      stage["t0"][k]) for k in lanes]
            return {"t0": t0, **carry(stage, shift_y)}

        def add_shift_y(stage):
            t0 = [to_fm((stage["t0"][k] << (WT_FRAC - FM_FRAC)) + column(shift_y, k)[0], WT_FRAC)
                  for k in lanes]
            return {"t0": t0, **carry(stage)}

        def add_residual(stage):
            summed = [saturate(stage["residual"][k] + stage["t0"][k], FM_BITS) for k in lanes]
            return {"summed": summed, **carry(stage, bn_out)}

        def output_batch_norm(stage):
            return {"fm": [column(bn_out, k)[0] * stage["summed"][k]
                           + (column(bn_out, k)[1] << FM_FRAC) for k in lanes]}

        def output_batch_norm_fm(stage):
            return {"fm": [rounded_to_fm(stage["fm"][k], PRODUCT_FRAC) for k in lanes]}

        stages = [
            to_fm_values, two_thirds, two_thirds_fm, add_one_third, add_one_third_fm,
            batch_norm, batch_norm_fm, add_shift_x, prelu_slope, prelu_slope_fm, add_shift_y,
            add_residual, output_batch_norm, output_batch_norm_fm]
        assert len(stages) == self.latency
        advance = lockstep_pipeline(m, self.i, self.o, stages)
        for port in (bn, shift_x, prelu, shift_y, bn_out):
            m.d.comb += port.en.eq(advance)
        return m
